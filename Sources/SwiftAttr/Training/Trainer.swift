/// Mini-batch training of a ``Network``'s parameters.
///
/// A run: optionally PyTorch's default initialisation (``Network/initialized(seed:)``); per epoch a
/// permutation of the examples (seeded, see ``Network/trainingPermutation(count:seed:epoch:)``) cut into
/// mini-batches of `batchSize` (the last may be smaller, as `DataLoader(drop_last=False)`); per
/// mini-batch the mean loss, its parameter gradients, the penalties' terms, one optimiser step. After
/// each epoch the validation loss and accuracy, the history, the callback, early stopping.
///
/// Numbering: epochs and steps (mini-batches within an epoch) count from 1 in the history, the callback
/// and every message. GEMMs run on the library's thread count; for a fixed thread count a run is
/// bit-for-bit repeatable (same seed → identical weights).

/// Which validation figure early stopping and the best epoch follow.
public enum TrainingMetric: Int32, Sendable, CaseIterable {
    /// The validation loss (lower is better).
    case loss = 0
    /// The validation accuracy (higher is better; cross-entropy and binary cross-entropy only).
    case accuracy = 1

    public var name: String {
        switch self {
        case .loss: "loss"
        case .accuracy: "accuracy"
        }
    }
}

/// The options of a training run (defaults: cross-entropy, Adam with lr 1e-3, 10 epochs of batch 32).
public struct TrainingOptions: Sendable, Equatable {
    public var loss: Loss = .crossEntropy
    public var optimizer = OptimizerSettings()
    public var epochs = 10
    public var batchSize = 32
    /// Seeds the shuffling and (with `initialize`) the initial weights; penalties receive it per step.
    public var seed: UInt64 = 0
    /// false: the examples in their given order every epoch.
    public var shuffle = true
    /// true: start from PyTorch's default initialisation instead of the network's weights.
    public var initialize = false
    /// Early stopping (needs a validation set): stop after `patience` epochs without improvement of
    /// `metric` and return the best epoch's weights. nil: train every epoch and return the last weights.
    public var patience: Int? = nil
    public var metric: TrainingMetric = .loss

    public init() {}

    func validate(hasValidation: Bool) throws {
        try optimizer.validate()
        try Check.positive(epochs, "epochs")
        try Check.positive(batchSize, "batch_size")
        if let patience {
            try Check.positive(patience, "patience")
            guard hasValidation else { throw SwiftAttrError.invalid("patience: early stopping needs a validation set") }
        }
        if metric == .accuracy && !loss.hasAccuracy {
            throw SwiftAttrError.invalid("metric: accuracy is defined for cross_entropy and binary_cross_entropy, not \(loss.name)")
        }
    }
}

/// The examples early stopping and the history's validation figures are computed on.
public struct ValidationSet: Sendable {
    public var x: [Float]
    public var rows: Int
    public var labels: TrainingLabels

    public init(x: [Float], rows: Int, labels: TrainingLabels) {
        self.x = x
        self.rows = rows
        self.labels = labels
    }
}

/// One epoch of the history.
public struct EpochRecord: Sendable, Equatable {
    /// From 1.
    public var epoch: Int
    /// Mean over the epoch's examples of their mini-batch's loss (task loss plus penalties), each taken
    /// before that mini-batch's update.
    public var trainLoss: Double
    /// The task loss on the validation set after the epoch (nil without one).
    public var validationLoss: Double?
    /// Validation accuracy after the epoch (nil without a validation set, or for MSE).
    public var validationAccuracy: Double?
}

/// What a run did.
public struct TrainingHistory: Sendable, Equatable {
    public var epochs: [EpochRecord] = []
    /// The epoch whose weights were returned under early stopping, else the best validation epoch (nil
    /// without a validation set).
    public var bestEpoch: Int?
    /// True when early stopping ended the run before its last epoch.
    public var stoppedEarly = false
    /// True when the callback asked to stop.
    public var stoppedByCallback = false
}

/// Where a mini-batch step is in the run (for penalties that draw random numbers per step).
public struct TrainingStep: Sendable, Equatable {
    /// From 1.
    public var epoch: Int
    /// The mini-batch within the epoch, from 1.
    public var step: Int
    /// Steps since the start of the run, from 0: with `seed`, a counter for draws that must differ
    /// from step to step and repeat from run to run (e.g. `CounterRandom` with example = globalStep).
    public var globalStep: Int
    /// The run's seed (``TrainingOptions/seed``).
    public var seed: UInt64
    /// The training-set rows the mini-batch holds, in batch order (the trainer shuffles), for penalties with
    /// data per training example (CDEP's per-example masks). nil: the batch's rows are examples 0..<rows, in
    /// order (``Network/lossAndGradients(_:rows:labels:loss:penalties:seed:)``).
    public var examples: [Int]? = nil
    /// The training set's row count (nil: the batch is the whole set).
    public var exampleCount: Int? = nil
}

/// An extra term of the training loss (the attribution priors), evaluated on every mini-batch.
///
/// The trainer calls ``lossAndGradient(network:batch:rows:labels:step:)`` once per step with the current
/// network (the weights before the step's update), the mini-batch (rows × inputSize floats, the shuffled
/// examples) and its labels; the returned value is added to the task loss and the returned arrays to the
/// task's parameter gradients, which must therefore have the order and shapes of
/// ``Network/parameterShapes`` (the trainer checks them). The batch's rows are the training examples
/// ``TrainingStep/examples`` of ``TrainingStep/exampleCount``. A thrown error stops training and is passed on.
/// The penalty's weight λ is the conformer's business: return λ·penalty and λ·∇penalty. A penalty with
/// parameters of its own (DAPr's prior network) is a class that keeps them and steps them inside the
/// call, e.g. with an ``OptimizerState`` of its own, so they train jointly with the model (the trainer
/// neither sees nor restores them under early stopping). Draws that must differ per step and repeat per
/// run key ``CounterRandom`` by (``TrainingStep/seed``, ``TrainingStep/globalStep``, example).
public protocol TrainingPenalty {
    func lossAndGradient(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep) throws -> (Double, [[Float]])
}

extension Network {
    /// Trains the network's parameters on `x` (rows × inputSize) with `labels` and returns a new network
    /// with the learned weights (this one is unchanged) and the history. `onEpoch` is called after every
    /// epoch with its record; returning true stops the run there (with early stopping configured, the
    /// best weights are then returned). A non-finite loss, gradient or weight stops the run with a
    /// `numerical` error naming the epoch and step.
    public func train(
        _ x: [Float], rows: Int, labels: TrainingLabels, options: TrainingOptions = .init(),
        validation: ValidationSet? = nil, penalties: [any TrainingPenalty] = [],
        onEpoch: ((EpochRecord) throws -> Bool)? = nil
    ) throws -> (network: Network, history: TrainingHistory) {
        try checkInputs(x, rows: rows)
        try options.validate(hasValidation: validation != nil)
        let end = try lossValue(options.loss)
        let width = size(at: end)
        try options.loss.check(labels, rows: rows, width: width, "labels")
        if let v = validation {
            try checkInputs(v.x, rows: v.rows, name: "validation inputs")
            try options.loss.check(v.labels, rows: v.rows, width: width, "validation labels")
        }
        guard !parameterShapes.isEmpty else { throw SwiftAttrError.invalid("model: it has no parameters to train") }

        var net = options.initialize ? try initialized(seed: options.seed) : self
        var parameters = net.parameters
        var optimizer = try OptimizerState(options.optimizer)
        var history = TrainingHistory()
        var best: (score: Double, epoch: Int, network: Network)?
        var sinceBest = 0
        var globalStep = 0
        let d = inputSize

        for epoch in 1...options.epochs {
            let order = options.shuffle ? Network.trainingPermutation(count: rows, seed: options.seed, epoch: epoch) : Array(0..<rows)
            var lossSum: Double = 0
            var step = 0
            var start = 0
            while start < rows {
                step += 1
                let batch = order[start..<min(rows, start + options.batchSize)]
                start += batch.count
                let bx = uninitializedFloats(batch.count * d) { out in
                    x.withUnsafeBufferPointer { xp in
                        for (r, i) in batch.enumerated() { (out + r * d).update(from: xp.baseAddress! + i * d, count: d) }
                    }
                }
                let by = labels.gather(batch, width: width)
                var (loss, gradients) = net.batchLossAndGradients(bx, rows: batch.count, labels: by, loss: options.loss, end: end)
                let where_ = "at epoch \(epoch), step \(step)"
                try net.addPenalties(penalties, batch: bx, rows: batch.count, labels: by,
                                     step: TrainingStep(epoch: epoch, step: step, globalStep: globalStep, seed: options.seed,
                                                        examples: Array(batch), exampleCount: rows),
                                     context: " " + where_, loss: &loss, gradients: &gradients)
                guard loss.isFinite else {
                    throw SwiftAttrError(.numerical, "training: the loss is \(loss) \(where_) (\(globalStep) steps in); lower lr or check the data")
                }
                lossSum += loss * Double(batch.count)
                // Drop the current network's hold on the parameter buffers, so the update runs in place
                // instead of copying every array (copy-on-write); a kept best network still shares them and
                // is copied, as it must be.
                net = self
                // The update checks the gradients and the new weights for finiteness as it goes; on failure
                // the run stops and these weights are dropped.
                let findings = optimizer.update(&parameters, gradients: gradients)
                if let k = findings.nonFiniteGradient {
                    throw SwiftAttrError(.numerical, "training: the gradient of \(parameterNames[k]) is not finite \(where_)")
                }
                if let k = findings.nonFiniteParameter {
                    throw SwiftAttrError(.numerical, "training: the weights became non-finite \(where_) (\(parameterNames[k]) contains a non-finite value); lower lr")
                }
                net = try withTrustedParameters(parameters)
                globalStep += 1
            }

            var record = EpochRecord(epoch: epoch, trainLoss: lossSum / Double(rows))
            var stop = false
            if let v = validation {
                let chunk = try net.chunkRows(from: 0, requested: nil)
                let f = Parallel.singleThreadedBLAS { net.forwardRows(v.x, rows: v.rows, from: 0, to: end, chunk: chunk) }
                record.validationLoss = options.loss.evaluate(f, rows: v.rows, width: width, labels: v.labels).loss
                record.validationAccuracy = options.loss.accuracy(f, rows: v.rows, width: width, labels: v.labels)
                let score = options.metric == .loss ? record.validationLoss! : -(record.validationAccuracy!)
                if best == nil || score < best!.score {
                    best = (score, epoch, net)
                    sinceBest = 0
                } else {
                    sinceBest += 1
                }
                history.bestEpoch = best!.epoch
                if let patience = options.patience, sinceBest >= patience, epoch < options.epochs {
                    history.stoppedEarly = true
                    stop = true
                }
            }
            history.epochs.append(record)
            if let onEpoch, try onEpoch(record), !stop {
                history.stoppedByCallback = true
                stop = true
            }
            if stop { break }
        }
        if options.patience != nil, let best { net = best.network }
        return (net, history)
    }

    /// The order of the examples in epoch `epoch` (from 1): a Fisher–Yates shuffle whose k-th swap partner
    /// is drawn from Philox block (seed, example = epoch, sample = "SHUF", block = k/2), so the permutation
    /// is a function of (seed, epoch, count) alone: not of the thread count, the batch size or earlier epochs.
    public static func trainingPermutation(count: Int, seed: UInt64, epoch: Int) -> [Int] {
        var p = Array(0..<count)
        var k = count - 1
        while k > 0 {
            let u = CounterRandom.uniforms(seed: seed, example: UInt64(epoch), sample: shuffleStream, block: UInt32(truncatingIfNeeded: k / 2))
            let j = CounterRandom.index(k % 2 == 0 ? u.0 : u.1, k + 1)
            p.swapAt(k, j)
            k -= 1
        }
        return p
    }
}

/// A penalty that adds its gradient to the parameters' arrays in place (its GEMMs accumulate into them),
/// where ``TrainingPenalty/lossAndGradient(network:batch:rows:labels:step:)`` writes a gradient of its own
/// that the trainer then adds: ``Network/addPenalties(_:batch:rows:labels:step:context:loss:gradients:)``
/// prefers it. The two must agree up to float32 rounding.
protocol GradientAccumulatingPenalty: TrainingPenalty {
    /// The penalty's value, its gradient added to `gradients` (the network's parameter arrays).
    func loss(network: Network, batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep,
              addingGradientTo gradients: inout [[Float]]) throws -> Double
}

extension Network {
    /// Adds each penalty's value to `loss` and its gradient to `gradients` (the parameters' arrays), one
    /// step's evaluation; a penalty whose gradient does not have the parameters' count and shapes is a shape
    /// error naming it (`context`, e.g. " at epoch 2, step 5", says where).
    func addPenalties(
        _ penalties: [any TrainingPenalty], batch: [Float], rows: Int, labels: TrainingLabels, step: TrainingStep,
        context: String, loss: inout Double, gradients: inout [[Float]]
    ) throws {
        let shapes = parameterShapes
        for penalty in penalties {
            if let accumulating = penalty as? any GradientAccumulatingPenalty {
                loss += try accumulating.loss(network: self, batch: batch, rows: rows, labels: labels, step: step, addingGradientTo: &gradients)
                continue
            }
            let (value, g) = try penalty.lossAndGradient(network: self, batch: batch, rows: rows, labels: labels, step: step)
            guard g.count == shapes.count, zip(g, shapes).allSatisfy({ $0.count == $1.reduce(1, *) }) else {
                throw SwiftAttrError.shape("penalty \(type(of: penalty))\(context): its gradient must have the network's \(shapes.count) parameter arrays and their shapes")
            }
            loss += value
            // gradients += g elementwise, on the workers (the sum of two parts in chunk order).
            var parts = [gradients, g]
            gradients = []
            gradients = sumInChunkOrder(&parts)
        }
    }
}
