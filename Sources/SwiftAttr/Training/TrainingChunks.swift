/// How a training pass splits a mini-batch over the library's workers: the one rule of the trainer's
/// passes (the task loss and its gradients, the attribution priors' double back-propagation, CDEP).
///
/// - A network whose every node is a GEMM on its weights or elementwise (Linear, activations, BatchNorm,
///   Softmax, Add, Concat, reshapes: ``Network/trainsAsOneChunk``) runs a batch that fits the memory
///   budget as **one chunk**, its GEMMs split over the workers by blocks of output features
///   (``Parallel/splittingGEMMs(_:_:)``): each weight matrix is packed once per pass and each weight
///   gradient is one GEMM over the whole batch, written once — batch-row chunks would each pack the
///   weights, each write a whole gradient, and then sum them. The elementwise work between GEMMs is small
///   next to them and runs on the calling thread.
/// - Any other network (convolutions, pooling, LSTM, Embedding: per-row work such as im2col that does not
///   split by output features) runs one or more chunks of rows per worker, each with single-threaded
///   GEMMs, at least ``Network/minimumTrainingChunk`` points each, at most the budget's; the chunks'
///   gradients are summed in chunk order (``sumInChunkOrder(_:)``).
///
/// The budget is ``Network/chunkRows(from:requested:)`` (tape floats per worker) divided by the tapes a
/// point keeps; one chunk of the whole batch may hold the workers' budgets together. Either way the split is a function of the batch size, the network and the thread count
/// only, so for a fixed thread count a pass repeats bit for bit; the random draws of a step never depend
/// on it (they are keyed by the example's row, see ``ExpectedGradientsDraws``).
struct TrainingChunks {
    /// Examples per chunk (the last may hold fewer).
    let size: Int
    /// The chunk size asked of ``Parallel/forEachChunk(count:chunk:_:)``, which balances it to `size`.
    private let requested: Int
    /// Number of chunks.
    let count: Int
    /// One chunk of the whole batch whose GEMMs are split over the workers.
    let splitsGEMMs: Bool

    /// The split of `rows` examples of `network` with `pointsPerExample` points each (Expected Gradients'
    /// k; 1 for the task loss), a point keeping `tapesPerPoint` tapes of the pass (values, gradients,
    /// tangents, …).
    init(_ network: Network, rows: Int, pointsPerExample k: Int = 1, tapesPerPoint tapes: Int = 1) {
        let workers = Parallel.workerCount
        let perWorker = (rows + workers - 1) / workers
        let budgetPoints = max(1, ((try? network.chunkRows(from: 0, requested: nil)) ?? perWorker * k) / tapes)
        // One chunk may hold what the workers' chunks would hold together.
        if network.trainsAsOneChunk && rows * k <= workers * budgetPoints {
            size = max(1, rows)
            requested = size
            count = 1
            splitsGEMMs = workers > 1
            return
        }
        let chunk = max((Network.minimumTrainingChunk + k - 1) / k, min(perWorker, max(1, budgetPoints / k)))
        requested = chunk
        size = Parallel.balancedChunk(count: rows, chunk: chunk)
        count = (rows + size - 1) / size
        splitsGEMMs = false
    }

    /// Runs `body(c, examples)` for every chunk: the single chunk on the calling thread with its GEMMs
    /// split over the workers, or the chunks on the workers (chunk c on worker c mod workers).
    func forEach(rows: Int, _ body: (Int, Range<Int>) -> Void) {
        guard rows > 0 else { return }
        if count == 1 {
            // Not forEachChunk, which would cut the batch into one chunk per worker.
            Parallel.singleThreadedBLAS { Parallel.splittingGEMMs(splitsGEMMs) { body(0, 0..<rows) } }
        } else {
            Parallel.forEachChunk(count: rows, chunk: requested) { c, examples, _ in body(c, examples) }
        }
    }

    /// Runs `body(c)` for every chunk c of a pass recorded with this split (a second pass over the records
    /// of the first, such as the priors' pullback), on the same threads as ``forEach(rows:_:)``.
    func forEachRecorded(_ body: (Int) -> Void) {
        if count == 1 {
            Parallel.singleThreadedBLAS { Parallel.splittingGEMMs(splitsGEMMs) { body(0) } }
        } else {
            Parallel.forEachChunk(count: count, chunk: 1) { c, _, _ in body(c) }
        }
    }
}

extension Network {
    /// The fewest points a worker takes in a chunked training pass (smaller GEMMs lose more to per-call
    /// overhead than a second thread gains).
    static let minimumTrainingChunk = 16

    /// Whether every node is a GEMM on its weights or elementwise, so the training passes run a batch as one
    /// chunk with split GEMMs (see ``TrainingChunks``).
    var trainsAsOneChunk: Bool {
        layers.allSatisfy { layer in
            switch layer {
            case .dense, .relu, .leakyReLU, .elu, .softplus, .sigmoid, .tanh, .softmax, .batchNorm, .dropout, .flatten, .reshape,
                 .add, .concat:
                true
            case .conv1d, .conv2d, .maxPool1d, .maxPool2d, .avgPool1d, .avgPool2d, .globalAvgPool, .embedding, .lstm:
                false
            }
        }
    }
}
