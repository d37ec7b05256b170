/// A dense row-major float32 array: a shape and contiguous storage.
///
/// Batch-first: an input batch of images has shape `[N, C, H, W]`, of sequences `[N, C, L]`, of
/// feature vectors `[N, F]`.
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var storage: [Float]

    /// Wraps `storage`; traps when the counts disagree (a programming error, not a user error).
    public init(shape: [Int], storage: [Float]) {
        precondition(shape.reduce(1, *) == storage.count, "Tensor: storage count \(storage.count) does not match shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Number of elements.
    public var count: Int { storage.count }

    /// Leading (batch) dimension.
    public var batch: Int { shape.first ?? 1 }

    /// Elements per example (product of all but the first dimension).
    public var exampleSize: Int { shape.dropFirst().reduce(1, *) }

    public subscript(flat i: Int) -> Float {
        get { storage[i] }
        set { storage[i] = newValue }
    }
}
