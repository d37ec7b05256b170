import XCTest
@testable import SwiftAttr

/// Integrated and Expected Hessians of token networks: taken at the embedding output and summed over both
/// embedding axes (Γ_tok[i, j] = Σ_{a∈i, b∈j} Γ[a, b]), so rows sum to the token-level Integrated Gradients.
final class TokenHessianTests: XCTestCase {
    static let length = 4, dim = 3

    /// Embedding(7, 3) on 4 tokens → Flatten → Dense(5) → Softplus(2) → Dense(2): smooth after the embedding.
    static func tokenMLP(_ g: inout Gen) -> Network {
        net([length], [SequenceModelTests.embedding(&g, vocab: 7, dim: dim), .flatten, g.dense(5, length * dim),
                       .softplus(beta: 2), g.dense(2, 5)])
    }

    static let ids: [Float] = [1, 2, 3, 4, 6, 5, 0, 2]
    static let pad: [Float] = [0, 0, 0, 0]

    /// Γ (rows × p × p) summed over blocks of `e` × `e` coordinates, in Double in row-major block order.
    static func blockSums(_ gamma: [Float], rows: Int, length L: Int, dim e: Int) -> [Float] {
        let p = L * e
        var out = [Float]()
        for r in 0..<rows {
            for i in 0..<L {
                for j in 0..<L {
                    var s = 0.0
                    for a in 0..<e { for b in 0..<e { s += Double(gamma[r * p * p + (i * e + a) * p + j * e + b]) } }
                    out.append(Float(s))
                }
            }
        }
        return out
    }

    func testTokenRowsSumToTokenIntegratedGradients() throws {
        var g = Gen(21)
        let n = Self.tokenMLP(&g), L = Self.length
        for baselines in [Self.pad, []] {
            let gamma = try n.integratedHessians(Self.ids, rows: 2, baselines: baselines, targets: [0, 1])
            XCTAssertEqual(gamma.count, 2 * L * L)
            let ig = try n.integratedGradients(Self.ids, rows: 2, baselines: baselines, targets: [0, 1], steps: 64).attributions
            XCTAssertEqual(ig.count, 2 * L)
            // Both quadratures converge far below 1e-4 on this smooth path; float32 rounding of the sums is ~1e-6.
            let scale = maxAbs(ig)
            for r in 0..<2 {
                for i in 0..<L {
                    let row = (0..<L).reduce(0.0) { $0 + Double(gamma[r * L * L + i * L + $1]) }
                    XCTAssertEqual(row, Double(ig[r * L + i]), accuracy: 1e-4 * scale, "example \(r) token \(i)")
                    for j in 0..<L { XCTAssertEqual(gamma[r * L * L + i * L + j], gamma[r * L * L + j * L + i], "symmetric") }
                }
            }
        }
    }

    func testTokenMatrixIsTheBlockSumOfTheEmbeddingMatrix() throws {
        var g = Gen(22)
        let n = Self.tokenMLP(&g), L = Self.length, E = Self.dim, p = L * E
        let full = try n.integratedHessians(Self.ids, rows: 2, baselines: Self.pad, targets: [1], sumEmbedding: false)
        XCTAssertEqual(full.count, 2 * p * p)
        // The same computation as the rest network at the embedded inputs: bit-exact.
        guard let (_, rest) = n.embeddingSplit else { return XCTFail("no embedding") }
        let direct = try rest.integratedHessians(try n.embedTokens(Self.ids, rows: 2), rows: 2,
                                                 baselines: try n.embedTokens(Self.pad, rows: 1), targets: [1])
        XCTAssertEqual(full, direct)
        let tokens = try n.integratedHessians(Self.ids, rows: 2, baselines: Self.pad, targets: [1])
        XCTAssertEqual(tokens, Self.blockSums(full, rows: 2, length: L, dim: E), "block sums (the same Double sums)")
        // One token's row: Σ_{a∈i} Γ[a, :] by Hessian–vector products, against the whole matrix (two float32
        // evaluations of the same sums: ~1e-6 of the scale apart).
        let scale = maxAbs(full)
        for i in [0, 2] {
            let row = try n.integratedHessians(Self.ids, rows: 2, baselines: Self.pad, targets: [1], interactionIndex: i, sumEmbedding: false)
            XCTAssertEqual(row.count, 2 * p)
            var expected = [Double]()
            for r in 0..<2 { for b in 0..<p { expected.append((0..<E).reduce(0.0) { $0 + Double(full[r * p * p + (i * E + $1) * p + b]) }) } }
            assertClose(row, expected, rel: 1e-5, "unsummed row \(i)")
            let summed = try n.integratedHessians(Self.ids, rows: 2, baselines: Self.pad, targets: [1], interactionIndex: i)
            XCTAssertEqual(summed.count, 2 * L)
            for r in 0..<2 { for j in 0..<L { XCTAssertEqual(Double(summed[r * L + j]), Double(tokens[r * L * L + i * L + j]), accuracy: 1e-5 * scale) } }
        }
        XCTAssertThrowsError(try n.integratedHessians(Self.ids, rows: 2, targets: [1], interactionIndex: L)) {
            XCTAssertEqual(($0 as? SwiftAttrError)?.code, .outOfRange)
            XCTAssertTrue("\($0)".contains("interaction_index"), "\($0)")
        }
    }

    func testTokenExpectedHessiansSeededAndAtTheEmbeddingOutput() throws {
        var g = Gen(23)
        let n = Self.tokenMLP(&g), L = Self.length, E = Self.dim, p = L * E
        let refs = Self.pad + [3, 3, 3, 3]
        let a = try n.expectedHessians(Self.ids, rows: 2, references: refs, referenceCount: 2, targets: [0], samples: 16, seed: 5)
        let b = try n.expectedHessians(Self.ids, rows: 2, references: refs, referenceCount: 2, targets: [0], samples: 16, seed: 5)
        XCTAssertEqual(a.count, 2 * L * L)
        XCTAssertEqual(a, b, "seeded: the same draws, the same computation")
        let c = try n.expectedHessians(Self.ids, rows: 2, references: refs, referenceCount: 2, targets: [0], samples: 16, seed: 6)
        XCTAssertNotEqual(a, c)
        let full = try n.expectedHessians(Self.ids, rows: 2, references: refs, referenceCount: 2, targets: [0], samples: 16, seed: 5,
                                          sumEmbedding: false)
        guard let (_, rest) = n.embeddingSplit else { return XCTFail("no embedding") }
        let direct = try rest.expectedHessians(try n.embedTokens(Self.ids, rows: 2), rows: 2, references: try n.embedTokens(refs, rows: 2),
                                               referenceCount: 2, targets: [0], samples: 16, seed: 5)
        XCTAssertEqual(full, direct)
        XCTAssertEqual(full.count, 2 * p * p)
        XCTAssertEqual(a, Self.blockSums(full, rows: 2, length: L, dim: E))
        let row = try n.expectedHessians(Self.ids, rows: 2, references: refs, referenceCount: 2, targets: [0], samples: 16, seed: 5,
                                         interactionIndex: 1)
        // Row 1 from the same draws by Hessian–vector products: float32 roundings apart.
        for r in 0..<2 { for j in 0..<L { XCTAssertEqual(Double(row[r * L + j]), Double(a[r * L * L + L + j]), accuracy: 1e-5 * maxAbs(a)) } }
        XCTAssertThrowsError(try n.expectedHessians(Self.ids, rows: 2, references: [7, 0, 0, 0], referenceCount: 1, targets: [0])) {
            XCTAssertEqual(($0 as? SwiftAttrError)?.code, .outOfRange)
            XCTAssertTrue("\($0)".contains("references"), "\($0)")
        }
    }

    func testLSTMTokenNetworksStillThrow() {
        var g = Gen(24)
        let c = SequenceModelTests.classifier(&g)
        let ids = [Float](repeating: 1, count: 6)
        for call in [{ _ = try c.integratedHessians(ids, rows: 1, targets: [0]) },
                     { _ = try c.expectedHessians(ids, rows: 1, references: ids, referenceCount: 1, targets: [0]) }] {
            XCTAssertThrowsError(try call()) {
                XCTAssertEqual(($0 as? SwiftAttrError)?.code, .invalidArgument)
                XCTAssertTrue("\($0)".contains("not supported for LSTM layers yet (second-order pass)"), "\($0)")
            }
        }
    }
}
