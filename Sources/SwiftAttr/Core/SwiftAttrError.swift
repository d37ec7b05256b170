#if canImport(Glibc)
import Glibc
#endif

/// The one error type of SwiftAttr. Every failure carries a ``Code`` (mirrored by the C interface's
/// `sa_status` enum) and a message that names the offending argument.
public struct SwiftAttrError: Error, CustomStringConvertible, Sendable {
    /// Failure classes; the raw values are the C status codes of `swiftattr.h`.
    public enum Code: Int32, Sendable {
        case nullPointer = -1
        case invalidArgument = -2
        case shapeMismatch = -3
        case nonFinite = -4
        case outOfRange = -5
        case unknownEnum = -6
        case io = -7
        case format = -8
        case numerical = -9
        case bufferTooSmall = -10
        case frozen = -11
        case outOfMemory = -12
        /// The caller's progress handler asked the call to stop (C: `sa_set_progress_handler`).
        case cancelled = -13
        case `internal` = -99
    }

    public let code: Code
    public let message: String
    /// For a rejected token id: the vocabulary size it was checked against, so a caller that passed the
    /// ids in chunks can locate the first bad one in its whole buffer (``Check/tokenIds(_:vocabulary:_:)``).
    public internal(set) var tokenVocabulary: Int? = nil

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func invalid(_ message: String) -> SwiftAttrError { .init(.invalidArgument, message) }
    static func shape(_ message: String) -> SwiftAttrError { .init(.shapeMismatch, message) }
}

/// Argument checks shared by every entry point.
public enum Check {
    /// Throws unless `value > 0`.
    static func positive(_ value: Int, _ name: String) throws {
        guard value > 0 else { throw SwiftAttrError.invalid("\(name) must be positive (got \(value))") }
    }

    /// Throws unless `value >= 0`.
    static func nonNegative(_ value: Int, _ name: String) throws {
        guard value >= 0 else { throw SwiftAttrError.invalid("\(name) must be non-negative (got \(value))") }
    }

    /// Throws unless `value <= limit`, saying what the limit is.
    static func atMost(_ value: Int, _ limit: Int, _ name: String, _ hint: String = "") throws {
        guard value <= limit else { throw SwiftAttrError.invalid("\(name) must be at most \(limit) (got \(value))\(hint)") }
    }

    /// Largest number of quadrature steps (Riemann rules) or of samples per example.
    static let maximumSteps = 1 << 20
    /// Largest Gauss–Legendre rule (its nodes cost O(n²) to compute).
    static let maximumGaussLegendreSteps = 4096

    /// Largest kernel, stride, padding or dilation accepted (2¹⁶), so window loops stay bounded.
    static let maximumWindow = 1 << 16

    /// Checks entry `index` of a window parameter (`what`, e.g. "conv stride") of a layer with `count`
    /// entries: at least `minimum` and at most ``maximumWindow``. The message names the C and Python
    /// argument: `base` for 1-D layers ("stride"; the kernel is "kernel_size"), `base_h` / `base_w` for
    /// 2-D ones ("stride_w").
    static func windowEntry(_ value: Int, _ what: String, _ base: String, _ index: Int, of count: Int, minimum: Int) throws {
        let argument = count == 1 ? (base == "kernel" ? "kernel_size" : base) : base + (index == 0 ? "_h" : "_w")
        guard value >= minimum else {
            throw SwiftAttrError.invalid("\(what) must be \(minimum == 0 ? "non-negative" : "positive") (\(argument) = \(value))")
        }
        guard value <= maximumWindow else { throw SwiftAttrError.invalid("\(what) must be at most \(maximumWindow) (\(argument) = \(value))") }
    }

    /// Throws unless `value <= maximumWindow`.
    static func window(_ value: Int, _ name: String) throws {
        guard value <= maximumWindow else { throw SwiftAttrError.invalid("\(name) must be at most \(maximumWindow) (got \(value))") }
    }

    /// Largest number of elements one array argument may have: (2³¹ − 1)·64 ≈ 2³⁷ (512 GiB of float32).
    public static let maximumElements = Int(Int32.max) * 64

    /// Product of dimensions, throwing on a non-positive dimension or when it exceeds ``maximumElements``.
    public static func count(_ dims: [Int], _ name: String) throws -> Int {
        var total = 1
        for d in dims {
            guard d > 0 else { throw SwiftAttrError.invalid("\(name): every dimension must be positive (got \(dims))") }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maximumElements else { throw tooLarge(name, dims) }
            total = p
        }
        return total
    }

    /// The error for an array `name` of shape `dims` (with the names of its dimensions, when known) that
    /// has more elements than ``maximumElements``.
    public static func tooLarge(_ name: String, _ dims: [Int], dimensionNames: [String]? = nil) -> SwiftAttrError {
        let shape = dims.map(String.init).joined(separator: " × ")
        let named = dimensionNames.map { " (\($0.joined(separator: " × ")))" } ?? ""
        return SwiftAttrError.invalid("\(name): \(shape)\(named) elements is more than the \(maximumElements) (2^37 − 64) one array may hold")
    }

    /// Throws `.nonFinite` naming `name` and the first bad index when a value is NaN or infinite.
    public static func finite(_ values: UnsafeBufferPointer<Float>, _ name: String) throws {
        for i in values.indices where !values[i].isFinite {
            throw SwiftAttrError(.nonFinite, "\(name) contains a non-finite value (\(values[i])) at flat index \(i)")
        }
    }

    static func finite(_ values: [Float], _ name: String) throws {
        try values.withUnsafeBufferPointer { try finite($0, name) }
    }

    static func finite(_ values: UnsafeBufferPointer<Double>, _ name: String) throws {
        for i in values.indices where !values[i].isFinite {
            throw SwiftAttrError(.nonFinite, "\(name) contains a non-finite value (\(values[i])) at flat index \(i)")
        }
    }

    static func finite(_ values: [Double], _ name: String) throws {
        try values.withUnsafeBufferPointer { try finite($0, name) }
    }

    /// Throws `.numerical` when a computed result (`name`) is NaN or infinite: results are never returned
    /// non-finite with success. `hint` is appended to the message.
    static func finiteResult<T: BinaryFloatingPoint>(_ values: [T], _ name: String, hint: String = "") throws {
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw SwiftAttrError(.numerical, "\(name) is not finite (\(values[i]) at flat index \(i)); the arithmetic overflowed\(hint)")
        }
    }
}

/// The one failable allocation of SwiftAttr: a Swift array whose allocation fails traps the process, so
/// every allocation whose size a caller controls (inputs copied in chunks, layer weights, model-file
/// tensors) first asks malloc for the same number of bytes and turns a refusal into `.outOfMemory`.
public enum Allocation {
    /// Throws `.outOfMemory` naming `name` unless `count` elements of `T` can be allocated now.
    public static func reserve<T>(_ count: Int, of _: T.Type, _ name: String) throws {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard !overflow, canAllocate(bytes) else {
            throw SwiftAttrError(.outOfMemory, "\(name): cannot allocate \(count) values (\(describe(bytes: overflow ? Int.max : bytes)))")
        }
    }

    /// Whether malloc grants `bytes` now. Not optimised: LLVM would otherwise elide the unused malloc/free
    /// pair and the probe would always succeed.
    @_optimize(none)
    static func canAllocate(_ bytes: Int) -> Bool {
        guard let probe = malloc(max(bytes, 1)) else { return false }
        free(probe)
        return true
    }

    /// A copy of `source` in a new array, or `.outOfMemory` naming `name`.
    public static func copy<T>(_ source: UnsafeBufferPointer<T>, _ name: String) throws -> [T] {
        try reserve(source.count, of: T.self, name)
        return [T](unsafeUninitializedCapacity: source.count) { buffer, initialized in
            if let base = source.baseAddress, source.count > 0 { buffer.baseAddress!.initialize(from: base, count: source.count) }
            initialized = source.count
        }
    }

    /// `count` zeros, or `.outOfMemory` naming `name`.
    public static func zeros<T: Numeric>(_ count: Int, of _: T.Type, _ name: String) throws -> [T] {
        try reserve(count, of: T.self, name)
        return [T](repeating: 0, count: count)
    }

    /// A byte count for messages ("8.0 GiB").
    static func describe(bytes: Int) -> String {
        let gib = Double(bytes) / Double(1 << 30)
        return gib >= 1 ? "\(Double(Int(gib * 10)) / 10) GiB" : "\(bytes >> 20) MiB"
    }
}
