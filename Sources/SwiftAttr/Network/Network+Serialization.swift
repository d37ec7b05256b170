#if canImport(Glibc)
import Glibc
#endif

/// The model file (`.sam`): one self-describing little-endian binary file.
///
///     magic      8 bytes  "SAMODEL1"
///     ndim       u32      input dimensions (1…3), then ndim × i64 input shape
///     layers     u32      layer count, then per layer:
///       kind     u32      `Layer.Kind` raw value (the C enum `sa_layer_kind`)
///       ints     u32 n, then n × i64   (e.g. Dense: out, in; Conv2d: out, in, kh, kw, sh, sw, ph, pw, dh, dw)
///       scalars  u32 n, then n × f32   (e.g. LeakyReLU slope, BatchNorm eps)
///       tensors  u32 n, then per tensor u64 count and count × f32 (e.g. Dense: W, b)
///
/// Loading re-validates every layer through the same checks as building, so a corrupt file is an error,
/// never a crash.
extension Layer {
    /// Layer kind codes shared with the C interface (`sa_layer_kind`) and the model file.
    public enum Kind: UInt32, Sendable, CaseIterable {
        case dense = 0, conv1d, conv2d, maxPool1d, maxPool2d, avgPool1d, avgPool2d, globalAvgPool, flatten
        case relu, leakyReLU, elu, softplus, sigmoid, tanh, softmax, batchNorm, dropout
    }

    public var kind: Kind {
        switch self {
        case .dense: .dense
        case .conv1d: .conv1d
        case .conv2d: .conv2d
        case .maxPool1d: .maxPool1d
        case .maxPool2d: .maxPool2d
        case .avgPool1d: .avgPool1d
        case .avgPool2d: .avgPool2d
        case .globalAvgPool: .globalAvgPool
        case .flatten: .flatten
        case .relu: .relu
        case .leakyReLU: .leakyReLU
        case .elu: .elu
        case .softplus: .softplus
        case .sigmoid: .sigmoid
        case .tanh: .tanh
        case .softmax: .softmax
        case .batchNorm: .batchNorm
        case .dropout: .dropout
        }
    }

    /// The layer as (integers, scalars, tensors) — the file record.
    var record: (ints: [Int], scalars: [Float], tensors: [[Float]]) {
        switch self {
        case .dense(let d): ([d.outFeatures, d.inFeatures], [], [d.weight, d.bias])
        case .conv1d(let c), .conv2d(let c): ([c.outChannels, c.inChannels] + c.kernel + c.stride + c.padding + c.dilation, [], [c.weight, c.bias])
        case .maxPool1d(let p), .maxPool2d(let p), .avgPool1d(let p), .avgPool2d(let p): (p.kernel + p.stride + p.padding, [], [])
        case .globalAvgPool, .flatten, .relu, .sigmoid, .tanh, .softmax: ([], [], [])
        case .leakyReLU(let slope): ([], [slope], [])
        case .elu(let alpha): ([], [alpha], [])
        case .softplus(let beta): ([], [beta], [])
        case .dropout(let p): ([], [p], [])
        case .batchNorm(let b): ([], [b.eps], [b.gamma, b.beta, b.runningMean, b.runningVar])
        }
    }

    /// Rebuilds a layer from its file record, validating everything.
    init(kind: Kind, ints: [Int], scalars: [Float], tensors: [[Float]]) throws {
        func need(_ i: Int, _ s: Int, _ t: Int) throws {
            guard ints.count == i, scalars.count == s, tensors.count == t else {
                throw SwiftAttrError(.format, "model file: a \(kind) record needs \(i) integers, \(s) scalars and \(t) tensors (has \(ints.count), \(scalars.count), \(tensors.count))")
            }
        }
        switch kind {
        case .dense:
            try need(2, 0, 2)
            self = .dense(try Dense(weight: tensors[0], bias: tensors[1], outFeatures: ints[0], inFeatures: ints[1]))
        case .conv1d, .conv2d:
            let d = kind == .conv1d ? 1 : 2
            try need(2 + 4 * d, 0, 2)
            let c = try Convolution(
                weight: tensors[0], bias: tensors[1], outChannels: ints[0], inChannels: ints[1],
                kernel: Array(ints[2..<(2 + d)]), stride: Array(ints[(2 + d)..<(2 + 2 * d)]),
                padding: Array(ints[(2 + 2 * d)..<(2 + 3 * d)]), dilation: Array(ints[(2 + 3 * d)..<(2 + 4 * d)]))
            self = kind == .conv1d ? .conv1d(c) : .conv2d(c)
        case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d:
            let d = (kind == .maxPool1d || kind == .avgPool1d) ? 1 : 2
            try need(3 * d, 0, 0)
            let p = try Pooling(kernel: Array(ints[0..<d]), stride: Array(ints[d..<(2 * d)]), padding: Array(ints[(2 * d)..<(3 * d)]))
            switch kind {
            case .maxPool1d: self = .maxPool1d(p)
            case .maxPool2d: self = .maxPool2d(p)
            case .avgPool1d: self = .avgPool1d(p)
            default: self = .avgPool2d(p)
            }
        case .globalAvgPool: try need(0, 0, 0); self = .globalAvgPool
        case .flatten: try need(0, 0, 0); self = .flatten
        case .relu: try need(0, 0, 0); self = .relu
        case .sigmoid: try need(0, 0, 0); self = .sigmoid
        case .tanh: try need(0, 0, 0); self = .tanh
        case .softmax: try need(0, 0, 0); self = .softmax
        case .leakyReLU: try need(0, 1, 0); self = .leakyReLU(slope: scalars[0])
        case .elu: try need(0, 1, 0); self = .elu(alpha: scalars[0])
        case .softplus: try need(0, 1, 0); self = .softplus(beta: scalars[0])
        case .dropout: try need(0, 1, 0); self = .dropout(p: scalars[0])
        case .batchNorm:
            try need(0, 1, 4)
            self = .batchNorm(try BatchNorm(gamma: tensors[0], beta: tensors[1], runningMean: tensors[2], runningVar: tensors[3], eps: scalars[0]))
        }
    }
}

extension Network {
    static let fileMagic: [UInt8] = Array("SAMODEL1".utf8)
    /// Largest model file accepted (16 GiB).
    static let maximumFileSize = 1 << 34

    /// The model file's bytes.
    public func serialized() -> [UInt8] {
        var bytes = Self.fileMagic
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { bytes.append(contentsOf: $0) } }
        func i64(_ v: Int) { withUnsafeBytes(of: Int64(v).littleEndian) { bytes.append(contentsOf: $0) } }
        func f32s(_ v: [Float]) { for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } } }
        u32(inputShape.count)
        inputShape.forEach(i64)
        u32(layers.count)
        for layer in layers {
            let r = layer.record
            u32(Int(layer.kind.rawValue))
            u32(r.ints.count); r.ints.forEach(i64)
            u32(r.scalars.count); f32s(r.scalars)
            u32(r.tensors.count)
            for t in r.tensors {
                withUnsafeBytes(of: UInt64(t.count).littleEndian) { bytes.append(contentsOf: $0) }
                f32s(t)
            }
        }
        return bytes
    }

    /// Parses a model file's bytes, validating every field. Every failure, including a layer that the
    /// file describes but that does not validate (bad sizes, NaN weights, shapes that do not fit), is a
    /// `.format` error whose message starts with "model file".
    public init(serialized bytes: [UInt8]) throws {
        do {
            self = try Self.parse(bytes)
        } catch let error as SwiftAttrError where error.code != .format {
            throw SwiftAttrError(.format, "model file: \(error.message)")
        }
    }

    private static func parse(_ bytes: [UInt8]) throws -> Network {
        var offset = 0
        func fail(_ what: String) -> SwiftAttrError { SwiftAttrError(.format, "model file: \(what) (at byte \(offset))") }
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, offset + n <= bytes.count else { throw fail("truncated") }
            defer { offset += n }
            return bytes[offset..<(offset + n)]
        }
        func u32() throws -> Int { Int(try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        func u64() throws -> UInt64 { try take(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        func i64() throws -> Int {
            let v = Int64(bitPattern: try u64())
            guard v >= Int64(Int32.min), v <= Int64(Int32.max) else { throw fail("integer \(v) out of range") }
            return Int(v)
        }
        func f32s(_ n: Int) throws -> [Float] {
            guard n <= (bytes.count - offset) / 4 else { throw fail("truncated") }
            let raw = try take(4 * n)
            var out = [Float](repeating: 0, count: n)
            var i = raw.startIndex
            for k in 0..<n {
                out[k] = Float(bitPattern: UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24)
                i += 4
            }
            return out
        }
        guard Array(try take(8)) == Self.fileMagic else { throw SwiftAttrError(.format, "model file: not a swiftattr model (bad magic)") }
        let ndim = try u32()
        guard (1...3).contains(ndim) else { throw fail("input ndim \(ndim) not in 1...3") }
        let shape = try (0..<ndim).map { _ in try i64() }
        var network = try Network(inputShape: shape)
        let count = try u32()
        for index in 0..<count {
            guard let kind = Layer.Kind(rawValue: UInt32(try u32())) else { throw fail("unknown layer kind in layer \(index)") }
            let ni = try u32()
            guard ni <= 64 else { throw fail("too many integers in layer \(index)") }
            let ints = try (0..<ni).map { _ in try i64() }
            let ns = try u32()
            guard ns <= 64 else { throw fail("too many scalars in layer \(index)") }
            let scalars = try f32s(ns)
            let nt = try u32()
            guard nt <= 16 else { throw fail("too many tensors in layer \(index)") }
            let tensors = try (0..<nt).map { _ -> [Float] in
                let n = try u64()
                guard n <= UInt64(bytes.count) else { throw fail("tensor larger than the file") }
                return try f32s(Int(n))
            }
            try network.append(try Layer(kind: kind, ints: ints, scalars: scalars, tensors: tensors))
        }
        guard offset == bytes.count else { throw fail("\(bytes.count - offset) trailing bytes") }
        return network
    }

    /// Writes the model file to `path`.
    public func save(to path: String) throws {
        let bytes = serialized()
        guard let file = fopen(path, "wb") else { throw SwiftAttrError(.io, "path: cannot open '\(path)' for writing (errno \(errno))") }
        defer { fclose(file) }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        guard written == bytes.count else { throw SwiftAttrError(.io, "path: short write to '\(path)'") }
    }

    /// Reads a model file from `path`.
    public static func load(from path: String) throws -> Network {
        guard let file = fopen(path, "rb") else { throw SwiftAttrError(.io, "path: cannot open '\(path)' for reading (errno \(errno))") }
        defer { fclose(file) }
        var info = stat()
        guard fstat(fileno(file), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw SwiftAttrError(.io, "path: '\(path)' is not a regular file")
        }
        guard info.st_size <= Network.maximumFileSize else {
            throw SwiftAttrError(.format, "model file: '\(path)' has \(info.st_size) bytes, more than the \(Network.maximumFileSize) a model may have")
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(info.st_size))
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            guard bytes.count <= Network.maximumFileSize else { throw SwiftAttrError(.format, "model file: '\(path)' is larger than \(Network.maximumFileSize) bytes") }
        }
        guard ferror(file) == 0 else { throw SwiftAttrError(.io, "path: read error on '\(path)'") }
        return try Network(serialized: bytes)
    }
}
