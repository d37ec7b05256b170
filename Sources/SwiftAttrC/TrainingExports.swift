import CSwiftAttr
import SwiftAttr

// The C interface of the trainer (swiftattr.h, section Training): options from the header's
// sa_train_options, labels from the pointer the loss takes, parameters concatenated in PyTorch's order.
// SwiftAttr checks the values; this layer checks pointers, sizes and enums and names the C arguments.

/// `sa_train_options sa_train_default_options(void)`: SwiftAttr's ``TrainingOptions`` defaults, each float
/// as the double with the same shortest decimal form (1e-3, not 0.0010000000474974513).
@_cdecl("sa_train_default_options")
public func sa_train_default_options() -> sa_train_options {
    let d = TrainingOptions()
    func decimal(_ f: Float) -> Double { Double("\(f)")! }
    return sa_train_options(
        struct_size: MemoryLayout<sa_train_options>.size, loss: d.loss.rawValue, optimizer: d.optimizer.kind.rawValue,
        metric: d.metric.rawValue, shuffle: d.shuffle ? 1 : 0, initialize: d.initialize ? 1 : 0,
        learning_rate: decimal(d.optimizer.learningRate), momentum: decimal(d.optimizer.momentum),
        beta1: decimal(d.optimizer.beta1), beta2: decimal(d.optimizer.beta2), eps: decimal(d.optimizer.eps),
        weight_decay: decimal(d.optimizer.weightDecay), epochs: Int64(d.epochs), batch_size: Int64(d.batchSize),
        seed: d.seed, patience: 0, priors: nil, n_priors: 0)
}

/// An sa_loss value, or an unknown-enum error naming `name`.
private func lossKind(_ value: Int32, _ name: String) throws -> Loss {
    guard let loss = Loss(rawValue: value) else {
        throw SwiftAttrError(.unknownEnum, "\(name): unknown sa_loss value \(value) (SA_LOSS_MSE, SA_LOSS_CROSS_ENTROPY, SA_LOSS_BINARY_CROSS_ENTROPY)")
    }
    return loss
}

/// A 0/1 flag named `name`.
private func flag(_ value: Int32, _ name: String) throws -> Bool {
    guard value == 0 || value == 1 else { throw SwiftAttrError(.invalidArgument, "options->\(name) must be 0 or 1 (got \(value))") }
    return value == 1
}

/// A float option: finite and representable as float32.
private func float(_ value: Double, _ name: String) throws -> Float {
    guard value.isFinite, abs(value) <= Double(Float.greatestFiniteMagnitude) else {
        throw SwiftAttrError(.invalidArgument, "options->\(name) must be finite (got \(value))")
    }
    return Float(value)
}

/// Reads `options` (NULL: the defaults), checking struct_size and the enums; SwiftAttr checks the ranges.
private func trainingOptions(_ pointer: UnsafePointer<sa_train_options>?) throws -> TrainingOptions {
    let o = pointer?.pointee ?? sa_train_default_options()
    let size = MemoryLayout<sa_train_options>.size
    guard o.struct_size == size else {
        throw SwiftAttrError(.invalidArgument, "options->struct_size is \(o.struct_size), but this library's sa_train_options has \(size) bytes "
                             + "(SA_VERSION \(BuildInfo.abiVersion)): start from sa_train_default_options() and compile against the library's swiftattr.h")
    }
    var t = TrainingOptions()
    t.loss = try lossKind(o.loss, "options->loss")
    guard let kind = OptimizerKind(rawValue: o.optimizer) else {
        throw SwiftAttrError(.unknownEnum, "options->optimizer: unknown sa_optimizer value \(o.optimizer) (SA_OPTIMIZER_SGD, SA_OPTIMIZER_ADAM)")
    }
    guard let metric = TrainingMetric(rawValue: o.metric) else {
        throw SwiftAttrError(.unknownEnum, "options->metric: unknown sa_metric value \(o.metric) (SA_METRIC_LOSS, SA_METRIC_ACCURACY)")
    }
    t.optimizer.kind = kind
    t.metric = metric
    t.shuffle = try flag(o.shuffle, "shuffle")
    t.initialize = try flag(o.initialize, "initialize")
    t.optimizer.learningRate = try float(o.learning_rate, "learning_rate")
    t.optimizer.momentum = try float(o.momentum, "momentum")
    t.optimizer.beta1 = try float(o.beta1, "beta1")
    t.optimizer.beta2 = try float(o.beta2, "beta2")
    t.optimizer.eps = try float(o.eps, "eps")
    t.optimizer.weightDecay = try float(o.weight_decay, "weight_decay")
    guard o.epochs > 0, o.epochs <= 1 << 31 else { throw SwiftAttrError(.invalidArgument, "options->epochs must be in 1...2^31 (got \(o.epochs))") }
    guard o.batch_size > 0, o.batch_size <= Int64(Int32.max) else {
        throw SwiftAttrError(.invalidArgument, "options->batch_size must be in 1...\(Int32.max) (got \(o.batch_size))")
    }
    guard o.patience >= 0 else { throw SwiftAttrError(.invalidArgument, "options->patience must be non-negative (got \(o.patience))") }
    t.epochs = Int(o.epochs)
    t.batchSize = Int(o.batch_size)
    t.seed = o.seed
    t.patience = o.patience == 0 ? nil : Int(min(o.patience, Int64(Int32.max)))
    return t
}

/// The labels of `rows` examples for `loss`: class indices from `classes` or values from `values`, the
/// other pointer NULL; `names` are the C arguments (class pointer, value pointer).
private func readLabels(
    _ loss: Loss, _ net: Network, classes: UnsafePointer<Int64>?, values: UnsafePointer<Float>?, rows: Int, names: (String, String)
) throws -> TrainingLabels {
    let width = try net.lossWidth(loss)
    let labels: TrainingLabels
    switch loss {
    case .crossEntropy:
        guard values == nil else { throw SwiftAttrError(.invalidArgument, "\(names.1) must be NULL for SA_LOSS_CROSS_ENTROPY, which takes class indices in \(names.0)") }
        let p = try nonNull(classes, names.0)
        labels = .classes(try (0..<rows).map { i in
            guard p[i] >= 0, p[i] < Int64(width) else {
                throw SwiftAttrError(.outOfRange, "\(names.0)[\(i)] = \(p[i]) is out of range 0..<\(width) (the model has \(width) outputs)")
            }
            return Int(p[i])
        })
    case .mse, .binaryCrossEntropy:
        guard classes == nil else { throw SwiftAttrError(.invalidArgument, "\(names.0) must be NULL for \(loss == .mse ? "SA_LOSS_MSE" : "SA_LOSS_BINARY_CROSS_ENTROPY"), which takes float targets in \(names.1)") }
        let count = try checkedProduct(rows, width, names.1, factors: ["n", "outputs"])
        labels = .values(try Allocation.copy(try floats(values, count, names.1, finite: false), names.1))
    }
    try loss.check(labels, rows: rows, width: width, loss == .crossEntropy ? names.0 : names.1)
    return labels
}

@_cdecl("sa_model_parameter_count")
public func sa_model_parameter_count(_ model: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?, _ total: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        let c = try nonNull(count, "count"), t = try nonNull(total, "total")
        c.pointee = Int64(net.parameterShapes.count)
        t.pointee = Int64(net.parameterCount)
    }
}

@_cdecl("sa_model_parameter_shape")
public func sa_model_parameter_shape(
    _ model: OpaquePointer?, _ index: Int64, _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let shapes = try handle(model).peek().parameterShapes
        guard index >= 0, index < Int64(shapes.count) else {
            throw SwiftAttrError(.outOfRange, "index = \(index) is out of range 0..<\(shapes.count) (the model's parameter arrays)")
        }
        let out = try output(shape, 4, "shape")
        let n = try nonNull(ndim, "ndim")
        let s = shapes[Int(index)]
        n.pointee = Int64(s.count)
        for (k, d) in s.enumerated() { out[k] = Int64(d) }
    }
}

/// Checks that `capacity` floats hold `total`, naming `name`.
private func checkCapacity(_ capacity: Int64, _ total: Int, _ name: String, _ capacityName: String) throws {
    guard capacity >= Int64(total) else {
        throw SwiftAttrError(.bufferTooSmall, "\(capacityName): \(name) needs \(total) floats (the model's parameters), capacity is \(capacity)")
    }
}

@_cdecl("sa_model_parameters")
public func sa_model_parameters(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ capacity: Int64) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        try checkCapacity(capacity, net.parameterCount, "out", "capacity")
        var o = try nonNull(out, "out")
        for p in net.parameters {
            p.withUnsafeBufferPointer { o.update(from: $0.baseAddress!, count: p.count) }
            o += p.count
        }
    }
}

/// `values` split into the model's parameter arrays.
private func splitParameters(_ net: Network, _ values: UnsafePointer<Float>, _ name: String) throws -> [[Float]] {
    var offset = 0
    return try net.parameterShapes.map { shape in
        let n = shape.reduce(1, *)
        defer { offset += n }
        return try Allocation.copy(UnsafeBufferPointer(start: values + offset, count: n), name)
    }
}

@_cdecl("sa_model_with_parameters")
public func sa_model_with_parameters(
    _ model: OpaquePointer?, _ values: UnsafePointer<Float>?, _ count: Int64, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        guard count == Int64(net.parameterCount) else {
            throw SwiftAttrError(.shapeMismatch, "count: the model has \(net.parameterCount) parameter floats, got \(count)")
        }
        _ = try nonNull(out, "out_model")
        let v = try floats(values, Int(count), "values")
        try publish(try net.withParameters(try splitParameters(net, v.baseAddress!, "values")), to: out)
    }
}

@_cdecl("sa_model_initialized")
public func sa_model_initialized(_ model: OpaquePointer?, _ seed: UInt64, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let net = try handle(model).peek()
        _ = try nonNull(out, "out_model")
        try publish(try net.initialized(seed: seed), to: out)
    }
}

@_cdecl("sa_loss_and_gradients")
public func sa_loss_and_gradients(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ yClass: UnsafePointer<Int64>?, _ yValue: UnsafePointer<Float>?,
    _ loss: Int32, _ priors: UnsafePointer<OpaquePointer?>?, _ nPriors: Int64, _ seed: UInt64,
    _ outLoss: UnsafeMutablePointer<Double>?, _ outGrads: UnsafeMutablePointer<Float>?, _ capacity: Int64
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let kind = try lossKind(loss, "loss")
        let labels = try readLabels(kind, net, classes: yClass, values: yValue, rows: rows, names: ("y_class", "y_value"))
        let penalties = try priorPenalties(priors, nPriors, for: net, "priors")
        let lossOut = try nonNull(outLoss, "out_loss")
        try checkCapacity(capacity, net.parameterCount, "out_grads", "grads_capacity")
        var g = try nonNull(outGrads, "out_grads")
        let result = try locatingRejectedValue([xs]) {
            try net.lossAndGradients(try xs.copyAll(), rows: rows, labels: labels, loss: kind, penalties: penalties, seed: seed)
        }
        lossOut.pointee = result.loss
        for p in result.gradients {
            p.withUnsafeBufferPointer { g.update(from: $0.baseAddress!, count: p.count) }
            g += p.count
        }
    }
}

@_cdecl("sa_train")
public func sa_train(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64, _ yClass: UnsafePointer<Int64>?, _ yValue: UnsafePointer<Float>?,
    _ valX: UnsafePointer<Float>?, _ valN: Int64, _ valYClass: UnsafePointer<Int64>?, _ valYValue: UnsafePointer<Float>?,
    _ options: UnsafePointer<sa_train_options>?, _ callback: sa_train_callback?, _ userData: UnsafeMutableRawPointer?,
    _ outModel: UnsafeMutablePointer<OpaquePointer?>?, _ outHistory: UnsafeMutablePointer<Double>?, _ historyCapacity: Int64,
    _ outEpochs: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let o = try trainingOptions(options)
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let labels = try readLabels(o.loss, net, classes: yClass, values: yValue, rows: rows, names: ("y_class", "y_value"))
        let penalties = try priorPenalties(options?.pointee.priors, options?.pointee.n_priors ?? 0, for: net, "options->priors")
        let validationRows = try checkCount(valN, "val_n", allowZero: true)
        var inputs = [xs]
        var validation: ValidationSet?
        if validationRows > 0 {
            let vx = try CallerRows(valX, rows: validationRows, width: net.inputSize, "val_x", countName: "val_n")
            inputs.append(vx)
            let vl = try readLabels(o.loss, net, classes: valYClass, values: valYValue, rows: validationRows, names: ("val_y_class", "val_y_value"))
            validation = ValidationSet(x: try vx.copyAll(), rows: validationRows, labels: vl)
        }
        _ = try nonNull(outModel, "out_model")
        var history: UnsafeMutablePointer<Double>?
        if let outHistory {
            let needed = try checkedProduct(o.epochs, Int(SA_TRAIN_HISTORY_COLUMNS), "out_history", factors: ["epochs", "SA_TRAIN_HISTORY_COLUMNS"])
            guard historyCapacity >= Int64(needed) else {
                throw SwiftAttrError(.bufferTooSmall, "history_capacity: out_history needs epochs × SA_TRAIN_HISTORY_COLUMNS = \(needed) doubles, capacity is \(historyCapacity)")
            }
            history = outHistory
        }
        let onEpoch: ((EpochRecord) throws -> Bool)? = callback.map { cb in
            { r in cb(userData, Int64(r.epoch), r.trainLoss, r.validationLoss ?? .nan, r.validationAccuracy ?? .nan) != 0 }
        }
        let (trained, record) = try locatingRejectedValue(inputs) {
            try net.train(try xs.copyAll(), rows: rows, labels: labels, options: o, validation: validation, penalties: penalties, onEpoch: onEpoch)
        }
        if let history {
            for (e, r) in record.epochs.enumerated() {
                history[3 * e] = r.trainLoss
                history[3 * e + 1] = r.validationLoss ?? .nan
                history[3 * e + 2] = r.validationAccuracy ?? .nan
            }
        }
        outEpochs?.pointee = Int64(record.epochs.count)
        try publish(trained, to: outModel)
    }
}
