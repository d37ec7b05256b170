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
        case `internal` = -99
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func invalid(_ message: String) -> SwiftAttrError { .init(.invalidArgument, message) }
    static func shape(_ message: String) -> SwiftAttrError { .init(.shapeMismatch, message) }
}

/// Argument checks shared by every entry point.
enum Check {
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

    /// Throws unless `value <= maximumWindow`.
    static func window(_ value: Int, _ name: String) throws {
        guard value <= maximumWindow else { throw SwiftAttrError.invalid("\(name) must be at most \(maximumWindow) (got \(value))") }
    }

    /// Product of dimensions, throwing on a non-positive dimension or on overflow.
    static func count(_ dims: [Int], _ name: String) throws -> Int {
        var total = 1
        for d in dims {
            guard d > 0 else { throw SwiftAttrError.invalid("\(name): every dimension must be positive (got \(dims))") }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= Int(Int32.max) * 64 else {
                throw SwiftAttrError.invalid("\(name): size \(dims) overflows")
            }
            total = p
        }
        return total
    }

    /// Throws `.nonFinite` naming `name` and the first bad index when a value is NaN or infinite.
    static func finite(_ values: UnsafeBufferPointer<Float>, _ name: String) throws {
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
