// The binding of ACD to a network: groups scored by Contextual Decomposition of one example.

extension GroupScorer {
    /// Scores groups of input elements of example `x` (one example, `network.inputSize` values) by the
    /// relevant part of Contextual Decomposition at the output, made scalar by `rule` for class `target`
    /// (acd: target − other for two classes, else the target). Every call runs CD on all its masks at once.
    public static func contextualDecomposition(network: Network, x: [Float], target: Int,
                                               rule: ACDScoreRule = .automatic) throws -> GroupScorer {
        guard x.count == network.inputSize else {
            throw SwiftAttrError.shape("x must have the model's input size \(network.inputSize) (got \(x.count))")
        }
        return try fromRelevantLogits(inputSize: network.inputSize, classes: network.outputSize, target: target, rule: rule) { masks, m in
            try network.cdRelevantLogits(x, masks: masks, maskCount: m)
        }
    }
}

extension Network {
    /// The relevant part of Contextual Decomposition at the output of example `x` for each of `maskCount`
    /// masks (maskCount × inputSize, 1 = relevant): maskCount × outputSize values. The one place where ACD
    /// meets CD.
    func cdRelevantLogits(_ x: [Float], masks: [Float], maskCount: Int) throws -> [Float] {
        try contextualDecomposition(x, rows: 1, masks: masks, maskCount: maskCount, internalBatchSize: nil).relevant
    }
}
