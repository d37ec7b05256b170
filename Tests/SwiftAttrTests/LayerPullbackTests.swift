import XCTest
@testable import SwiftAttr

/// Every layer kind, and whole networks mixing them: (a) the engine's float32 forward equals the
/// independent float64 reference of TestSupport.swift to ~1e-5, and (b) the engine's pullback
/// `Network.gradient(x, rows:, cotangent:)` equals float64 central differences of that reference
/// (h = 1e-5) to 1e-4 of the gradient's scale — a wrong index, a missing term or a wrong derivative
/// cannot pass these tolerances.
final class LayerPullbackTests: XCTestCase {
    /// Checks forward and pullback of `net` at `x` (rows examples) with a random full cotangent.
    func check(
        _ net: Network, _ x: [Float], rows: Int, seed: UInt64 = 99, forwardTolerance: Double = 1e-5, gradientTolerance: Double = 1e-4,
        _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        var ref = Reference(net)
        let expected = ref.forwardBatch(x, rows: rows)
        XCTAssertGreaterThan(ref.kink, 1e-3, "\(what): test point lies too close to a kink (\(ref.kink)); choose another seed", file: file, line: line)
        let y = net.forward(x, rows: rows)
        assertClose(y, expected, rel: forwardTolerance, floor: 1, "\(what) forward", file: file, line: line)

        var g = Gen(seed)
        let cotangent = g.normals(rows * net.outputSize)
        ref.kink = .infinity
        let fd = ref.finiteDifferenceGradient(x, rows: rows, cotangent: cotangent)
        XCTAssertGreaterThan(ref.kink, 1e-4, "\(what): finite differences cross a kink", file: file, line: line)
        XCTAssertGreaterThan(maxAbs(fd), 1e-3, "\(what): degenerate (zero) gradient makes a weak test", file: file, line: line)
        do {
            let grad = try net.gradient(x, rows: rows, cotangent: cotangent)
            assertClose(grad, fd, rel: gradientTolerance, "\(what) pullback", file: file, line: line)
            // Chunking (one example at a time) must not change the result.
            let one = try net.gradient(x, rows: rows, cotangent: cotangent, internalBatchSize: 1)
            assertClose(one, grad, rel: 1e-6, "\(what) pullback, internalBatchSize 1", file: file, line: line)
        } catch {
            XCTFail("\(what): gradient threw \(error)", file: file, line: line)
        }
    }

    // MARK: Dense

    func testDense() {
        var g = Gen(1)
        let n = net([5], [g.dense(4, 5)])
        check(n, g.normals(3 * 5), rows: 3, "Dense")
        let noBias = net([7], [g.dense(3, 7, bias: false)])
        check(noBias, g.normals(2 * 7), rows: 2, "Dense without bias")
    }

    // MARK: Convolutions

    func testConv1dStridePaddingDilation() {
        // (kernel, stride, padding, dilation)
        let combos: [(Int, Int, Int, Int)] = [(3, 1, 0, 1), (3, 2, 1, 1), (2, 1, 2, 2), (3, 3, 1, 2), (1, 2, 0, 1), (4, 1, 3, 1)]
        for (index, (k, s, p, d)) in combos.enumerated() {
            var g = Gen(10 + UInt64(index))
            let n = net([2, 9], [g.conv(3, 2, kernel: [k], stride: [s], padding: [p], dilation: [d], bias: index % 2 == 0)])
            check(n, g.normals(2 * 18), rows: 2, "Conv1d k\(k) s\(s) p\(p) d\(d)")
        }
    }

    func testConv2dStridePaddingDilation() {
        // (kernel, stride, padding, dilation), each (h, w)
        let combos: [([Int], [Int], [Int], [Int])] = [
            ([3, 3], [1, 1], [0, 0], [1, 1]),
            ([3, 2], [2, 1], [1, 0], [1, 2]),
            ([2, 2], [2, 2], [1, 1], [2, 2]),
            ([3, 3], [1, 2], [2, 1], [2, 1]),
            ([1, 3], [1, 1], [0, 2], [1, 1]),
            ([2, 3], [3, 2], [1, 2], [1, 1]),
        ]
        for (index, (k, s, p, d)) in combos.enumerated() {
            var g = Gen(20 + UInt64(index))
            let n = net([2, 6, 7], [g.conv(2, 2, kernel: k, stride: s, padding: p, dilation: d, bias: index % 2 == 1)])
            check(n, g.normals(2 * 84), rows: 2, "Conv2d k\(k) s\(s) p\(p) d\(d)")
        }
    }

    // MARK: Pooling

    func testPool1d() {
        let configs: [([Int], [Int]?, [Int]?)] = [([2], nil, nil), ([3], [2], [1]), ([4], [1], [2]), ([3], [3], [0]), ([2], [1], [1])]
        for (index, (k, s, p)) in configs.enumerated() {
            var g = Gen(30 + UInt64(index))
            let x = g.distinct(2 * 3 * 10)
            check(net([3, 10], [.maxPool1d(pool(k, stride: s, padding: p))]), x, rows: 2, "MaxPool1d k\(k) s\(s ?? k) p\(p ?? [0])")
            check(net([3, 10], [.avgPool1d(pool(k, stride: s, padding: p))]), x, rows: 2, "AvgPool1d k\(k) s\(s ?? k) p\(p ?? [0])")
        }
    }

    func testPool2d() {
        let configs: [([Int], [Int]?, [Int]?)] = [
            ([2, 2], nil, nil), ([3, 3], [2, 2], [1, 1]), ([3, 2], [1, 2], [1, 1]), ([2, 3], [2, 1], [0, 1]), ([4, 2], [1, 1], [2, 0]),
        ]
        for (index, (k, s, p)) in configs.enumerated() {
            var g = Gen(40 + UInt64(index))
            let x = g.distinct(2 * 2 * 6 * 7)
            check(net([2, 6, 7], [.maxPool2d(pool(k, stride: s, padding: p))]), x, rows: 2, "MaxPool2d k\(k) s\(s ?? k) p\(p ?? [0, 0])")
            check(net([2, 6, 7], [.avgPool2d(pool(k, stride: s, padding: p))]), x, rows: 2, "AvgPool2d k\(k) s\(s ?? k) p\(p ?? [0, 0])")
        }
    }

    func testGlobalAvgPool() {
        var g = Gen(50)
        check(net([3, 5], [.globalAvgPool]), g.normals(2 * 15), rows: 2, "GlobalAvgPool [C, L]")
        check(net([2, 3, 4], [.globalAvgPool]), g.normals(3 * 24), rows: 3, "GlobalAvgPool [C, H, W]")
    }

    // MARK: Shape-only layers

    func testFlattenAndDropout() {
        var g = Gen(51)
        check(net([2, 3, 4], [.flatten]), g.normals(2 * 24), rows: 2, "Flatten")
        check(net([2, 3, 4], [.flatten, g.dense(3, 24)]), g.normals(2 * 24), rows: 2, "Flatten + Dense")
        check(net([6], [.dropout(p: 0.5)]), g.normals(2 * 6), rows: 2, "Dropout")
        check(net([3, 4], [.dropout(p: 0.2)]), g.normals(2 * 12), rows: 2, "Dropout [C, L]")
    }

    func testReshape() throws {
        var g = Gen(57)
        check(net([24], [.reshape(shape: [2, 3, 4]), g.conv(3, 2, kernel: [2, 2]), .tanh, .flatten, g.dense(2, 18)]),
              g.normals(3 * 24), rows: 3, "Reshape [24] → [2, 3, 4] + Conv2d")
        check(net([2, 12], [.reshape(shape: [4, 6]), g.conv(2, 4, kernel: [3]), .sigmoid]), g.normals(2 * 24), rows: 2,
              "Reshape [2, 12] → [4, 6] + Conv1d")
        XCTAssertThrowsError(try Network(inputShape: [24], layers: [.reshape(shape: [5, 5])]))
        XCTAssertThrowsError(try Network(inputShape: [24], layers: [.reshape(shape: [2, 3, 2, 2])]))
        // A file round trip keeps the view, and the transformed network with T = I computes the same function.
        let n = net([12], [.reshape(shape: [3, 4]), g.conv(2, 3, kernel: [2]), .relu, .flatten])
        XCTAssertEqual(try Network(serialized: n.serialized()), n)
        var identity = [Float](repeating: 0, count: 144)
        for j in 0..<12 { identity[j * 12 + j] = 1 }
        let x = g.normals(2 * 12)
        let t = try n.transformed(inverse: identity, coefficients: 12, residual: true)
        XCTAssertEqual(t.inputShape, [24])
        var z = [Float]()
        for r in 0..<2 { z += x[(r * 12)..<((r + 1) * 12)] + [Float](repeating: 0, count: 12) }
        assertClose(t.forward(z, rows: 2), n.forward(x, rows: 2), rel: 1e-6, "transformed by the identity")
    }

    // MARK: Activations

    func testReLU() {
        var g = Gen(52)
        check(net([8], [.relu]), g.awayFromZero(3 * 8), rows: 3, "ReLU")
        check(net([2, 3, 2], [.relu]), g.awayFromZero(2 * 12), rows: 2, "ReLU [C, H, W]")
    }

    func testLeakyReLU() {
        for (i, slope) in [Float(0.01), 0.2, -0.3, 1.5].enumerated() {
            var g = Gen(53 + UInt64(i))
            check(net([8], [.leakyReLU(slope: slope)]), g.awayFromZero(3 * 8), rows: 3, "LeakyReLU \(slope)")
        }
    }

    func testELU() {
        for (i, alpha) in [Float(1), 0.5, 2, -0.5, 0].enumerated() {
            var g = Gen(60 + UInt64(i))
            check(net([8], [.elu(alpha: alpha)]), g.awayFromZero(3 * 8, scale: 2), rows: 3, "ELU \(alpha)")
        }
    }

    func testSoftplus() {
        for (i, beta) in [Float(0.5), 1, 2, 10].enumerated() {
            var g = Gen(70 + UInt64(i))
            check(net([8], [.softplus(beta: beta)]), g.normals(3 * 8, scale: 1.5), rows: 3, "Softplus β=\(beta)")
        }
    }

    func testSigmoidTanh() {
        var g = Gen(80)
        check(net([8], [.sigmoid]), g.normals(3 * 8, scale: 2), rows: 3, "Sigmoid")
        check(net([8], [.tanh]), g.normals(3 * 8, scale: 1.5), rows: 3, "Tanh")
    }

    func testSoftmaxFinal() {
        var g = Gen(81)
        check(net([6], [.softmax]), g.normals(3 * 6, scale: 2), rows: 3, "Softmax")
        check(net([5], [g.dense(4, 5), .softmax]), g.normals(2 * 5), rows: 2, "Dense + Softmax")
    }

    // MARK: BatchNorm

    func testBatchNorm() {
        var g = Gen(90)
        check(net([4], [g.batchNorm(4)]), g.normals(3 * 4), rows: 3, "BatchNorm [C]")
        check(net([3, 5], [g.batchNorm(3)]), g.normals(2 * 15), rows: 2, "BatchNorm [C, L]")
        check(net([2, 3, 4], [g.batchNorm(2)]), g.normals(2 * 24), rows: 2, "BatchNorm [C, H, W]")
        let defaults = Layer.batchNorm(try! .init(gamma: nil, beta: nil, runningMean: [0.5, -1], runningVar: [4, 0.25], eps: 0.1))
        check(net([2, 3], [defaults]), g.normals(2 * 6), rows: 2, "BatchNorm (default γ, β)")
    }

    // MARK: Whole networks

    func testMLP() {
        var g = Gen(100)
        let n = net([6], [
            g.dense(8, 6), .relu, g.dense(8, 8), .leakyReLU(slope: 0.1), .dropout(p: 0.3), g.dense(7, 8), g.batchNorm(7), .elu(alpha: 1),
            g.dense(6, 7), .tanh, g.dense(5, 6), .softplus(beta: 2), g.dense(4, 5), .sigmoid, g.dense(3, 4), .softmax,
        ])
        check(n, g.normals(3 * 6), rows: 3, "MLP")
    }

    func testCNN1d() {
        var g = Gen(110)
        let n = net([2, 12], [
            g.conv(3, 2, kernel: [3], padding: [1]), g.batchNorm(3), .relu, .maxPool1d(pool([2])),
            g.conv(4, 3, kernel: [2], stride: [1], padding: [1], dilation: [2]), .tanh, .avgPool1d(pool([2], stride: [1], padding: [1])),
            .flatten, g.dense(6, 4 * 7), .softplus(beta: 1), g.dense(3, 6),
        ])
        check(n, g.normals(2 * 24), rows: 2, "CNN 1-D")
    }

    func testCNN2d() {
        var g = Gen(122)
        let n = net([1, 8, 8], [
            g.conv(3, 1, kernel: [3, 3], padding: [1, 1]), .relu, .maxPool2d(pool([2, 2])),
            g.conv(4, 3, kernel: [2, 2], stride: [1, 1], padding: [1, 0], dilation: [1, 2]), g.batchNorm(4), .elu(alpha: 1),
            .avgPool2d(pool([2, 2], stride: [1, 1])), .flatten, .dropout(p: 0.1), g.dense(5, 4 * 4 * 1), .sigmoid, g.dense(3, 5), .softmax,
        ])
        check(n, g.normals(2 * 64), rows: 2, "CNN 2-D")
        let gap = net([2, 5, 5], [g.conv(3, 2, kernel: [3, 3], stride: [2, 2], padding: [1, 1]), .leakyReLU(slope: 0.05), .globalAvgPool, g.dense(2, 3)])
        check(gap, g.normals(2 * 50), rows: 2, "CNN 2-D with global average pool")
    }
}
