#if canImport(Glibc)
import Glibc
#endif

/// Progress of SwiftAttr's long inner loops, per thread. A caller installs an observer around a call with
/// ``observing(_:_:)`` (the C layer installs one that calls the caller's `sa_progress_fn`); a loop that runs
/// on the calling thread splits its work into pieces of about ``workPerPiece`` multiply–adds and reports
/// (done, total) between them, and an error the observer throws (a cancel) stops it. The pieces do not
/// depend on whether an observer is installed, so neither do the results.
public enum CallProgress {
    public typealias Observer = (_ done: Int, _ total: Int) throws -> Void

    /// Multiply–adds per piece of a long loop: 2²⁷ (tens of milliseconds on one core).
    public static let workPerPiece = 1 << 27

    private final class Box {
        let observer: Observer
        init(_ observer: @escaping Observer) { self.observer = observer }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { $0.map { Unmanaged<AnyObject>.fromOpaque($0).release() } }
        return key
    }()

    /// Runs `body` with `observer` receiving the progress of the loops it runs on this thread; the previous
    /// observer (if any) is restored afterwards.
    public static func observing<T>(_ observer: @escaping Observer, _ body: () throws -> T) rethrows -> T {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passRetained(Box(observer) as AnyObject).toOpaque())
        defer {
            if let mine = pthread_getspecific(key) { Unmanaged<AnyObject>.fromOpaque(mine).release() }
            pthread_setspecific(key, previous)
        }
        return try body()
    }

    /// Tells the calling thread's observer (if any) that `done` of `total` units are finished.
    static func report(_ done: Int, of total: Int) throws {
        guard let raw = pthread_getspecific(key) else { return }
        let box = Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() as! Box
        try box.observer(done, total)
    }
}

extension Network {
    /// Multiply–adds of one forward pass of one example (an estimate: the GEMM-like layers dominate), for
    /// sizing pieces of work by their cost.
    public var forwardWork: Int {
        var work = 0
        for (i, layer) in layers.enumerated() {
            let out = size(at: i + 1)
            switch layer {
            case .dense(let d): work += d.inFeatures * d.outFeatures
            case .conv1d(let c), .conv2d(let c): work += c.weight.count / max(1, c.outChannels) * out
            case .lstm(let l): work += (shapes[inputs[i][0]].first ?? 1) * 4 * l.hiddenSize * (l.inputSize + l.hiddenSize)
            case .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .flatten, .reshape, .relu, .leakyReLU, .elu,
                 .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .add, .concat, .embedding:
                work += out
            }
        }
        return max(1, work)
    }
}
