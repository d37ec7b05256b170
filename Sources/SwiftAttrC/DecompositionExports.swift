import SwiftAttr

// C export of Contextual Decomposition (swiftattr.h, section "Contextual Decomposition").

@_cdecl("sa_contextual_decomposition")
public func sa_contextual_decomposition(
    _ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ n: Int64,
    _ mask: UnsafePointer<Float>?, _ nMasks: Int64, _ internalBatchSize: Int64,
    _ relevant: UnsafeMutablePointer<Float>?, _ irrelevant: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded {
        let net = try handle(model).use()
        let rows = try checkCount(n, "n")
        let xs = try CallerRows(x, rows: rows, width: net.inputSize, "x", countName: "n")
        let maskCount = try checkCount(nMasks, "n_masks")
        // One mask has input_size values: L for a token network (one per position, applied to its embedding vector).
        let ms = try CallerRows(mask, rows: maskCount, width: net.inputSize, "mask", countName: "n_masks")
        let batchSize = try chunk(internalBatchSize)
        // Per example: n_masks × output_size floats in each output.
        let width = try checkedProduct(maskCount, net.outputSize, "relevant", factors: ["n_masks", "output_size"])
        _ = try checkedProduct(rows, width, "relevant", factors: ["n", "n_masks * output_size"])
        _ = try nonNull(relevant, "relevant")
        _ = try nonNull(irrelevant, "irrelevant")
        // The masks are shared by every example (one copy, checked by SwiftAttr); the examples are walked in chunks.
        let masks = try ms.copyAll()
        try forEachRowChunk(rows: rows, width: max(net.inputSize, width), work: work(net, passes: 2 * maskCount), inputs: [xs, ms]) { range in
            let r = try net.contextualDecomposition(try xs.copy(range), rows: range.count, masks: masks, maskCount: maskCount,
                                                    internalBatchSize: batchSize)
            let offset = range.lowerBound * width, count = range.count * width
            try write(r.relevant, to: advanced(relevant, offset), at: offset, count: count, "relevant")
            try write(r.irrelevant, to: advanced(irrelevant, offset), at: offset, count: count, "irrelevant")
        }
    }
}
