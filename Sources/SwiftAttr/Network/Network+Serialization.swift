#if canImport(Glibc)
import Glibc
#endif

/// The model file (`.sam`): one self-describing little-endian binary file.
///
///     magic      8 bytes  "SAMODEL1" (a chain) or "SAMODEL2" (a graph)
///     ndim       u32      input dimensions (1…3), then ndim × i64 input shape
///     layers     u32      node count, then per node:
///       inputs   u32 n, then n × i64   the values the node reads (SAMODEL2 only; SAMODEL1: the value before)
///       kind     u32      `Layer.Kind` raw value (the C enum `sa_layer_kind`)
///       ints     u32 n, then n × i64   (e.g. Dense: out, in; Conv2d: out, in, kh, kw, sh, sw, ph, pw, dh, dw;
///                                      Embedding: vocab, dim; LSTM: input_size, hidden_size, return_sequences)
///       scalars  u32 n, then n × f32   (e.g. LeakyReLU slope, BatchNorm eps)
///       tensors  u32 n, then per tensor u64 count and count × f32 (e.g. Dense: W, b; Embedding: W;
///                                      LSTM: weight_ih, weight_hh, bias_ih, bias_hh)
///
/// Loading re-validates every layer through the same checks as building, so a corrupt file is an error,
/// never a crash. A chain is written as SAMODEL1, so files of chains stay readable by every version; both
/// versions load.
extension Layer {
    /// Layer kind codes shared with the C interface (`sa_layer_kind`) and the model file.
    public enum Kind: UInt32, Sendable, CaseIterable {
        case dense = 0, conv1d, conv2d, maxPool1d, maxPool2d, avgPool1d, avgPool2d, globalAvgPool, flatten
        case relu, leakyReLU, elu, softplus, sigmoid, tanh, softmax, batchNorm, dropout
        case add, concat
        /// Added compatibly (new codes; files without them read as before).
        case embedding, lstm
        case reshape
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
        case .reshape: .reshape
        case .relu: .relu
        case .leakyReLU: .leakyReLU
        case .elu: .elu
        case .softplus: .softplus
        case .sigmoid: .sigmoid
        case .tanh: .tanh
        case .softmax: .softmax
        case .batchNorm: .batchNorm
        case .dropout: .dropout
        case .add: .add
        case .concat: .concat
        case .embedding: .embedding
        case .lstm: .lstm
        }
    }

    /// The layer as (integers, scalars, tensors) — the file record.
    var record: (ints: [Int], scalars: [Float], tensors: [[Float]]) {
        switch self {
        case .dense(let d): ([d.outFeatures, d.inFeatures], [], [d.weight, d.bias])
        case .conv1d(let c), .conv2d(let c): ([c.outChannels, c.inChannels] + c.kernel + c.stride + c.padding + c.dilation, [], [c.weight, c.bias])
        case .maxPool1d(let p), .maxPool2d(let p), .avgPool1d(let p), .avgPool2d(let p): (p.kernel + p.stride + p.padding, [], [])
        case .reshape(let shape): (shape, [], [])
        case .globalAvgPool, .flatten, .relu, .sigmoid, .tanh, .softmax, .add, .concat: ([], [], [])
        case .leakyReLU(let slope): ([], [slope], [])
        case .elu(let alpha): ([], [alpha], [])
        case .softplus(let beta): ([], [beta], [])
        case .dropout(let p): ([], [p], [])
        case .batchNorm(let b): ([], [b.eps], [b.gamma, b.beta, b.runningMean, b.runningVar])
        case .embedding(let e): ([e.vocabularySize, e.dimension], [], [e.weight])
        case .lstm(let l): ([l.inputSize, l.hiddenSize, l.returnSequences ? 1 : 0], [], [l.weightIH, l.weightHH, l.biasIH, l.biasHH])
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
        case .reshape:
            guard (1...3).contains(ints.count), scalars.isEmpty, tensors.isEmpty else {
                throw SwiftAttrError(.format, "model file: a reshape record needs 1 to 3 integers and nothing else (has \(ints.count), \(scalars.count), \(tensors.count))")
            }
            self = .reshape(shape: ints)
        case .relu: try need(0, 0, 0); self = .relu
        case .sigmoid: try need(0, 0, 0); self = .sigmoid
        case .tanh: try need(0, 0, 0); self = .tanh
        case .softmax: try need(0, 0, 0); self = .softmax
        case .add: try need(0, 0, 0); self = .add
        case .concat: try need(0, 0, 0); self = .concat
        case .leakyReLU: try need(0, 1, 0); self = .leakyReLU(slope: scalars[0])
        case .elu: try need(0, 1, 0); self = .elu(alpha: scalars[0])
        case .softplus: try need(0, 1, 0); self = .softplus(beta: scalars[0])
        case .dropout: try need(0, 1, 0); self = .dropout(p: scalars[0])
        case .embedding:
            try need(2, 0, 1)
            self = .embedding(try Embedding(weight: tensors[0], vocabularySize: ints[0], dimension: ints[1]))
        case .lstm:
            try need(3, 0, 4)
            guard ints[2] == 0 || ints[2] == 1 else { throw SwiftAttrError(.format, "model file: LSTM return_sequences flag \(ints[2]) is not 0 or 1") }
            self = .lstm(try LSTM(weightIH: tensors[0], weightHH: tensors[1], biasIH: tensors[2], biasHH: tensors[3],
                                  inputSize: ints[0], hiddenSize: ints[1], returnSequences: ints[2] == 1))
        case .batchNorm:
            try need(0, 1, 4)
            self = .batchNorm(try BatchNorm(gamma: tensors[0], beta: tensors[1], runningMean: tensors[2], runningVar: tensors[3], eps: scalars[0]))
        }
    }
}

extension Network {
    static let fileMagic: [UInt8] = Array("SAMODEL1".utf8)
    static let graphFileMagic: [UInt8] = Array("SAMODEL2".utf8)
    /// Largest model file accepted (16 GiB).
    static let maximumFileSize = 1 << 34

    /// Emits the model file, field by field, to `sink` (tensors as one chunk each, without a copy on a
    /// little-endian machine).
    private func encode(to sink: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        func u32(_ v: Int) throws { try withUnsafeBytes(of: UInt32(v).littleEndian, sink) }
        func i64(_ v: Int) throws { try withUnsafeBytes(of: Int64(v).littleEndian, sink) }
        func f32s(_ v: [Float]) throws {
            #if _endian(little)
            try v.withUnsafeBytes(sink)
            #else
            for x in v { try withUnsafeBytes(of: x.bitPattern.littleEndian, sink) }
            #endif
        }
        let graph = !isChain
        try (graph ? Self.graphFileMagic : Self.fileMagic).withUnsafeBytes(sink)
        try u32(inputShape.count)
        for d in inputShape { try i64(d) }
        try u32(layers.count)
        for (i, layer) in layers.enumerated() {
            if graph {
                try u32(inputs[i].count)
                for v in inputs[i] { try i64(v) }
            }
            let r = layer.record
            try u32(Int(layer.kind.rawValue))
            try u32(r.ints.count)
            for v in r.ints { try i64(v) }
            try u32(r.scalars.count)
            try f32s(r.scalars)
            try u32(r.tensors.count)
            for t in r.tensors {
                try withUnsafeBytes(of: UInt64(t.count).littleEndian, sink)
                try f32s(t)
            }
        }
    }

    /// The model file's bytes.
    public func serialized() -> [UInt8] {
        var bytes: [UInt8] = []
        encode { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Parses a model file's bytes, validating every field. Every failure, including a layer that the
    /// file describes but that does not validate (bad sizes, NaN weights, shapes that do not fit), is a
    /// `.format` error whose message starts with "model file" (`.outOfMemory` when a tensor the file
    /// declares cannot be allocated).
    public init(serialized bytes: [UInt8]) throws {
        var offset = 0
        self = try bytes.withUnsafeBytes { all in
            try Self.parse(size: all.count) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: all[offset..<(offset + target.count)]))
                offset += target.count
            }
        }
    }

    /// Parses a model file of `size` bytes whose bytes `read` delivers in order (it fills its whole
    /// argument; `parse` never asks past `size`). The magic is checked first, and each tensor's size
    /// against what is left of the file before anything is allocated for it.
    private static func parse(size: Int, read: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Network {
        /// A layer or shape the file describes that does not validate is a format error of the file.
        func validated<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let error as SwiftAttrError where error.code != .format {
                throw SwiftAttrError(.format, "model file: \(error.message)")
            }
        }
        var offset = 0
        func fail(_ what: String) -> SwiftAttrError { SwiftAttrError(.format, "model file: \(what) (at byte \(offset))") }
        func take(_ target: UnsafeMutableRawBufferPointer) throws {
            guard target.count <= size - offset else { throw fail("truncated") }
            try read(target)
            offset += target.count
        }
        func u32() throws -> Int {
            var v: UInt32 = 0
            try withUnsafeMutableBytes(of: &v) { try take($0) }
            return Int(UInt32(littleEndian: v))
        }
        func u64() throws -> UInt64 {
            var v: UInt64 = 0
            try withUnsafeMutableBytes(of: &v) { try take($0) }
            return UInt64(littleEndian: v)
        }
        func i64() throws -> Int {
            let v = Int64(bitPattern: try u64())
            guard v >= Int64(Int32.min), v <= Int64(Int32.max) else { throw fail("integer \(v) out of range") }
            return Int(v)
        }
        func f32s(_ n: Int, _ what: String) throws -> [Float] {
            guard n <= (size - offset) / 4 else { throw fail("truncated") }
            var out = try Allocation.zeros(n, of: Float.self, "model file: \(what)")
            try out.withUnsafeMutableBytes { try take($0) }
            #if !_endian(little)
            for k in 0..<n { out[k] = Float(bitPattern: UInt32(littleEndian: out[k].bitPattern)) }
            #endif
            return out
        }
        var magic = [UInt8](repeating: 0, count: 8)
        guard size >= 8 else { throw SwiftAttrError(.format, "model file: not a swiftattr model (\(size) bytes, shorter than the magic)") }
        try magic.withUnsafeMutableBytes { try take($0) }
        guard magic == Self.fileMagic || magic == Self.graphFileMagic else {
            throw SwiftAttrError(.format, "model file: not a swiftattr model (bad magic)")
        }
        let graph = magic == Self.graphFileMagic
        let ndim = try u32()
        guard (1...3).contains(ndim) else { throw fail("input ndim \(ndim) not in 1...3") }
        let shape = try (0..<ndim).map { _ in try i64() }
        var network = try validated { try Network(inputShape: shape) }
        let count = try u32()
        for index in 0..<count {
            var reads = [index]
            if graph {
                let n = try u32()
                guard n >= 1, n <= 1 << 16 else { throw fail("node \(index) reads \(n) values") }
                reads = try (0..<n).map { _ in try i64() }
            }
            guard let kind = Layer.Kind(rawValue: UInt32(try u32())) else { throw fail("unknown layer kind in layer \(index)") }
            let ni = try u32()
            guard ni <= 64 else { throw fail("too many integers in layer \(index)") }
            let ints = try (0..<ni).map { _ in try i64() }
            let ns = try u32()
            guard ns <= 64 else { throw fail("too many scalars in layer \(index)") }
            let scalars = try f32s(ns, "layer \(index) scalars")
            let nt = try u32()
            guard nt <= 16 else { throw fail("too many tensors in layer \(index)") }
            let tensors = try (0..<nt).map { t -> [Float] in
                let n = try u64()
                guard n <= UInt64(size - offset) / 4 else {
                    throw fail("truncated: tensor \(t) of layer \(index) declares \(n) floats, more than the \(size - offset) bytes left")
                }
                return try f32s(Int(n), "layer \(index) tensor \(t)")
            }
            try validated { try network.append(try Layer(kind: kind, ints: ints, scalars: scalars, tensors: tensors), inputs: reads) }
        }
        guard offset == size else { throw fail("\(size - offset) trailing bytes") }
        return network
    }

    /// Writes the model file to `path`. A regular file (or a new one) is replaced atomically: the bytes go
    /// to a temporary file in the same directory, which is checked (every write, fsync, close) and then
    /// renamed over `path`, so a failure (disk full, a file-size limit) leaves the old file intact and
    /// throws `.io` naming the path. Anything else (a device such as /dev/null, a FIFO) is written in
    /// place, every write checked.
    public func save(to path: String) throws {
        func failure(_ what: String, _ code: Int32 = errno) -> SwiftAttrError {
            SwiftAttrError(.io, "path: cannot \(what) '\(path)': \(String(cString: strerror(code)))")
        }
        var target = path
        var info = stat()
        if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK {
            // Write through a symbolic link, as fopen would, rather than replacing the link.
            guard let resolved = realpath(path, nil) else { throw failure("resolve") }
            target = String(cString: resolved)
            free(resolved)
        }
        let exists = stat(target, &info) == 0
        if exists && (info.st_mode & S_IFMT) != S_IFREG {
            let fd = open(target, O_WRONLY | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { throw failure("open for writing") }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            do { try writeAll(fd, failure) } catch { close(fd); throw error }
            guard close(fd) == 0 else { throw failure("write") }
            return
        }
        var fd: Int32 = -1
        var temporary = ""
        for attempt in 0..<100 {
            temporary = "\(target).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw failure("create a temporary file beside") }
        do {
            if exists { _ = fchmod(fd, info.st_mode & 0o7777) }
            try writeAll(fd, failure)
            guard fsync(fd) == 0 else { throw failure("write") }
            let closed = close(fd)
            fd = -1
            guard closed == 0 else { throw failure("write") }
            guard rename(temporary, target) == 0 else { throw failure("replace") }
        } catch {
            if fd >= 0 { close(fd) }
            unlink(temporary)
            throw error
        }
    }

    /// Writes the model file to the open descriptor `fd` through a 1 MiB buffer, checking every write.
    private func writeAll(_ fd: Int32, _ failure: (String, Int32) -> SwiftAttrError) throws {
        let capacity = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var used = 0
        func flush(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", errno)
                }
                if n == 0 { throw failure("write", EIO) }
                done += n
            }
        }
        try encode { chunk in
            if used + chunk.count > capacity {
                try flush(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
                used = 0
            }
            if chunk.count > capacity {
                try flush(chunk)
            } else if chunk.count > 0 {
                UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + chunk.count)]).copyMemory(from: chunk)
                used += chunk.count
            }
        }
        try flush(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
    }

    /// Reads a model file from `path`. The file is opened without blocking (a FIFO or device would
    /// otherwise wait forever), must be a regular file of at most 16 GiB, and is parsed as it is read:
    /// a file that is not a model fails at its first 8 bytes, and a tensor is read straight into its
    /// array, allocated failably (`.outOfMemory`) after its size was checked against the file.
    public static func load(from path: String) throws -> Network {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw SwiftAttrError(.io, "path: cannot open '\(path)' for reading: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw SwiftAttrError(.io, "path: '\(path)' is not a regular file")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        guard info.st_size <= Network.maximumFileSize else {
            throw SwiftAttrError(.format, "model file: '\(path)' has \(info.st_size) bytes, more than the \(Network.maximumFileSize) a model may have")
        }
        // Small fields come through a 64 KiB buffer; large reads (tensors) go straight to their array.
        let capacity = 1 << 16
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var start = 0, end = 0
        func readSome(_ target: UnsafeMutableRawBufferPointer) throws -> Int {
            while true {
                let n = read(fd, target.baseAddress!, target.count)
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw SwiftAttrError(.io, "path: read error on '\(path)': \(String(cString: strerror(errno)))") }
                guard n > 0 else { throw SwiftAttrError(.format, "model file: '\(path)' is truncated (it shrank while being read)") }
                return n
            }
        }
        return try parse(size: Int(info.st_size)) { target in
            var filled = 0
            while filled < target.count {
                if start == end {
                    let rest = UnsafeMutableRawBufferPointer(rebasing: target[filled...])
                    if rest.count >= capacity {
                        filled += try readSome(rest)
                        continue
                    }
                    start = 0
                    end = try readSome(buffer)
                }
                let n = min(end - start, target.count - filled)
                UnsafeMutableRawBufferPointer(rebasing: target[filled..<(filled + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + n)]))
                start += n
                filled += n
            }
        }
    }
}
