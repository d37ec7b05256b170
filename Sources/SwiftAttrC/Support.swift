import SwiftAttr
#if canImport(Glibc)
import Glibc
#endif

// The thin C layer's shared machinery: the per-thread error message, the `guarded` wrapper that turns
// thrown errors into status codes, and pointer checks that name the argument.

/// Per-thread storage of the last error message (a malloc'd C string owned by the thread).
private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

/// Stores `message` as the calling thread's last error.
func setLastError(_ message: String) {
    if let old = pthread_getspecific(errorKey) { free(old) }
    let copy = strdup(message)
    pthread_setspecific(errorKey, copy)
}

/// `const char *sa_last_error(void)`: the calling thread's message for its last failure ("" if none).
@_cdecl("sa_last_error")
public func sa_last_error() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(errorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return UnsafePointer(staticEmpty)
}
private let staticEmpty: UnsafeMutablePointer<CChar> = strdup("")

/// `int sa_version(void)`: the library's interface version, `SA_VERSION` of swiftattr.h (checked by
/// ABINumberingTests and the C tests).
@_cdecl("sa_version")
public func sa_version() -> Int32 { Int32(BuildInfo.abiVersion) }

/// Per-thread storage of the last `sa_build_info()` string.
private let buildInfoKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

/// `const char *sa_build_info(void)`: ``BuildInfo/json``; valid until the thread's next call.
@_cdecl("sa_build_info")
public func sa_build_info() -> UnsafePointer<CChar> {
    if let old = pthread_getspecific(buildInfoKey) { free(old) }
    let copy = strdup(BuildInfo.json)
    pthread_setspecific(buildInfoKey, copy)
    return UnsafePointer(copy ?? staticEmpty)
}

/// `int sa_set_num_threads(int n)`: the library's thread count for calls that start afterwards.
@_cdecl("sa_set_num_threads")
public func sa_set_num_threads(_ n: Int32) -> Int32 {
    guarded { try Parallel.setThreadCount(Int(n)) }
}

/// `int sa_get_num_threads(void)`: the library's thread count.
@_cdecl("sa_get_num_threads")
public func sa_get_num_threads() -> Int32 { Int32(Parallel.threadCount) }

/// Runs `body`, mapping a thrown ``SwiftAttrError`` to its status code and recording its message.
@inline(__always)
/// The whole call runs inside ``CallGate``, so a fork waits until it is done (fork safety).
func guarded(_ body: () throws -> Void) -> Int32 {
    CallGate.run {
        do {
            try body()
            return 0
        } catch let error as SwiftAttrError {
            setLastError(error.message)
            return error.code.rawValue
        } catch {
            setLastError("internal error: \(error)")
            return SwiftAttrError.Code.internal.rawValue
        }
    }
}

/// Throws a null-pointer error naming `name` when `pointer` is nil; returns it unwrapped otherwise.
@inline(__always)
func nonNull<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let p = pointer else { throw SwiftAttrError(.nullPointer, "\(name) is NULL") }
    return p
}

/// Reads `count` int64 dimensions from `dims` (named `name`), checking the pointer and the values.
func readDims(_ dims: UnsafePointer<Int64>?, _ count: Int64, _ name: String, maxCount: Int64 = 3) throws -> [Int] {
    guard count > 0 else { throw SwiftAttrError(.invalidArgument, "\(name): number of dimensions must be positive (got \(count))") }
    guard count <= maxCount else { throw SwiftAttrError(.shapeMismatch, "\(name) must have 1 to \(maxCount) dimensions (got \(count))") }
    let p = try nonNull(dims, name)
    return try (0..<Int(count)).map { i in
        let d = p[i]
        guard d > 0, d <= Int64(Int32.max) else { throw SwiftAttrError(.invalidArgument, "\(name)[\(i)] must be in 1...\(Int32.max) (got \(d))") }
        return Int(d)
    }
}

/// Checks that `n` is a usable element count for an argument named `name`.
func checkCount(_ n: Int64, _ name: String, allowZero: Bool = false) throws -> Int {
    if allowZero ? n < 0 : n <= 0 {
        throw SwiftAttrError(.invalidArgument, "\(name) must be \(allowZero ? "non-negative" : "positive") (got \(n))")
    }
    guard n <= Int64(Check.maximumElements) else {
        throw SwiftAttrError(.invalidArgument, "\(name) = \(n) is more than the \(Check.maximumElements) (2^37 − 64) elements one array may hold")
    }
    return Int(n)
}

/// Product of counts with an overflow check, for buffer sizes; `factors` names a and b for the message.
func checkedProduct(_ a: Int, _ b: Int, _ name: String, factors: [String]? = nil) throws -> Int {
    let (p, o) = a.multipliedReportingOverflow(by: b)
    guard !o, p <= Check.maximumElements else { throw Check.tooLarge(name, [a, b], dimensionNames: factors) }
    return p
}

/// A buffer view over caller memory after checking the pointer (float32).
func floats(_ p: UnsafePointer<Float>?, _ count: Int, _ name: String, finite: Bool = true) throws -> UnsafeBufferPointer<Float> {
    let buffer = UnsafeBufferPointer(start: try nonNull(p, name), count: count)
    if finite {
        for i in 0..<count where !buffer[i].isFinite {
            throw SwiftAttrError(.nonFinite, "\(name) contains a non-finite value (\(buffer[i])) at flat index \(i)")
        }
    }
    return buffer
}

/// A buffer view over caller memory after checking the pointer (float64). Values are SwiftAttr's to check
/// (finiteness, symmetry), once, where they are used.
func doubles(_ p: UnsafePointer<Double>?, _ count: Int, _ name: String) throws -> UnsafeBufferPointer<Double> {
    UnsafeBufferPointer(start: try nonNull(p, name), count: count)
}

/// An output buffer view over caller memory after checking the pointer.
func output<T>(_ p: UnsafeMutablePointer<T>?, _ count: Int, _ name: String) throws -> UnsafeMutableBufferPointer<T> {
    UnsafeMutableBufferPointer(start: try nonNull(p, name), count: count)
}

// --- progress ---------------------------------------------------------------------------------------
// The calling thread's progress handler (sa_set_progress_handler): one per thread, like sqlite3's
// progress handler, so no existing signature changes and every long call honours it. It is called only
// by ``reportProgress(_:of:call:)``, on the thread that made the call, between chunks of work.

/// `typedef int (*sa_progress_fn)(void *user_data, int64_t done, int64_t total);`
public typealias ProgressCallback = @convention(c) (UnsafeMutableRawPointer?, Int64, Int64) -> Int32

private struct ProgressHandler {
    let callback: ProgressCallback
    let userData: UnsafeMutableRawPointer?
}

/// Per-thread storage of the progress handler (a pointer to a ``ProgressHandler``, freed with the thread).
private let progressKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { $0.map { UnsafeMutableRawPointer($0).deallocate() } }
    return key
}()

/// `int sa_set_progress_handler(sa_progress_fn callback, void *user_data)`: installs (or with NULL
/// removes) the calling thread's progress handler. Always succeeds.
@_cdecl("sa_set_progress_handler")
public func sa_set_progress_handler(_ callback: ProgressCallback?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    if let old = pthread_getspecific(progressKey) {
        pthread_setspecific(progressKey, nil)
        old.assumingMemoryBound(to: ProgressHandler.self).deinitialize(count: 1).deallocate()
    }
    if let callback {
        let p = UnsafeMutablePointer<ProgressHandler>.allocate(capacity: 1)
        p.initialize(to: ProgressHandler(callback: callback, userData: userData))
        pthread_setspecific(progressKey, p)
    }
    return 0
}

/// Tells the calling thread's progress handler (if any) that `done` of `total` units of the call are
/// finished; throws `cancelled`, naming the call, when it returns non-zero. `call` is the export's Swift
/// name (`#function`), cut at its argument list.
func reportProgress(_ done: Int, of total: Int, call: String) throws {
    guard let raw = pthread_getspecific(progressKey) else { return }
    let handler = raw.assumingMemoryBound(to: ProgressHandler.self).pointee  // a copy: the callback may replace it
    guard handler.callback(handler.userData, Int64(done), Int64(total)) == 0 else {
        let name = call.split(separator: "(", maxSplits: 1).first.map(String.init) ?? call
        throw SwiftAttrError(.cancelled, "\(name): cancelled by the progress handler after \(done) of \(total)")
    }
}
