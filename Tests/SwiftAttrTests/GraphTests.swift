import XCTest
@testable import SwiftAttr

/// Graph networks built node by node: the residual, dense-concatenation and branching structures of
/// ResNet- and DenseNet-style models.
enum GraphFixtures {
    /// [2, 6, 6] → conv → BN → ReLU (v3, read twice) → conv → add with v1 (a residual) → ReLU, and a 1×1
    /// conv of v3 beside it → concat along channels → average pool → flatten → dense. Every node kind of a
    /// graph: add, concat, fan-out.
    static func residualConcat(_ g: inout Gen, smooth: Bool = false) -> Network {
        let act: Layer = smooth ? .softplus(beta: 2) : .relu
        var n = net([2, 6, 6], [])
        func add(_ layer: Layer, _ inputs: [Int]) { do { try n.append(layer, inputs: inputs) } catch { fatalError("\(error)") } }
        add(g.conv(3, 2, kernel: [3, 3], padding: [1, 1]), [0])      // v1
        add(g.batchNorm(3), [1])                                      // v2
        add(act, [2])                                                 // v3
        add(g.conv(3, 3, kernel: [3, 3], padding: [1, 1]), [3])      // v4
        add(.add, [4, 1])                                             // v5: residual
        add(smooth ? .tanh : .relu, [5])                              // v6
        add(g.conv(2, 3, kernel: [1, 1]), [3])                        // v7: fan-out of v3
        add(.concat, [6, 7])                                          // v8: [5, 6, 6]
        add(.avgPool2d(pool([2, 2])), [8])                            // v9
        add(.flatten, [9])                                            // v10
        add(g.dense(4, 45), [10])                                     // v11
        return n
    }

    /// Two affine branches of the input summed and concatenated before the first nonlinearity: the affine
    /// prefix is the whole branching part. [6] → (dense a, dense b) → add → concat with dense c → tanh → dense.
    static func affineBranches(_ g: inout Gen) -> Network {
        var n = net([6], [])
        func add(_ layer: Layer, _ inputs: [Int]) { do { try n.append(layer, inputs: inputs) } catch { fatalError("\(error)") } }
        add(g.dense(5, 6), [0])            // v1
        add(g.dense(5, 6), [0])            // v2
        add(.add, [1, 2])                  // v3
        add(g.dense(3, 6), [0])            // v4
        add(.concat, [3, 4])               // v5: [8]
        add(.tanh, [5])                    // v6
        add(g.dense(8, 8), [6])            // v7
        add(.softplus(beta: 1), [7])       // v8
        add(.add, [8, 6])                  // v9: a residual over the last block
        add(g.dense(3, 8), [9])            // v10
        return n
    }

    /// DenseNet-style: [2, 8, 8] → conv → ReLU (v2) → conv → ReLU (v4) → concat [v2, v4] (v5) → 1×1 conv →
    /// ReLU (v7) → concat [v5, v7] (v8, 10 channels) → max-pool → ELU → conv → flatten → dense. Values v2 and
    /// v5 fan out (each read by a conv and a concat). With `bias: false` every value is 0 at a zero input
    /// (so a zero reference is equal within every pooling window).
    static func denseNetConcat(_ g: inout Gen, bias: Bool = true) -> Network {
        var n = net([2, 8, 8], [])
        func add(_ layer: Layer, _ inputs: [Int]) { do { try n.append(layer, inputs: inputs) } catch { fatalError("\(error)") } }
        add(g.conv(4, 2, kernel: [3, 3], padding: [1, 1], bias: bias), [0])   // v1
        add(.relu, [1])                                                        // v2
        add(g.conv(3, 4, kernel: [3, 3], padding: [1, 1], bias: bias), [2])   // v3
        add(.relu, [3])                                                        // v4
        add(.concat, [2, 4])                                                   // v5: [7, 8, 8]
        add(g.conv(3, 7, kernel: [1, 1], bias: bias), [5])                     // v6
        add(.relu, [6])                                                        // v7
        add(.concat, [5, 7])                                                   // v8: [10, 8, 8]
        add(.maxPool2d(pool([2, 2])), [8])                                     // v9: [10, 4, 4]
        add(.elu(alpha: 1), [9])                                               // v10
        add(g.conv(4, 10, kernel: [3, 3], stride: [2, 2], bias: bias), [10])  // v11: [4, 1, 1]
        add(.flatten, [11])                                                    // v12
        add(g.dense(3, 4, bias: bias), [12])                                   // v13
        return n
    }

    /// Two branches of a vector input ending in Softmax: [6] → dense → ReLU (v2, read twice) and dense →
    /// sigmoid (v4) → concat → dense (v6), plus dense of v2 (v7) → add → LeakyReLU → dense → Softmax.
    static func twoBranchSoftmax(_ g: inout Gen) -> Network {
        var n = net([6], [])
        func add(_ layer: Layer, _ inputs: [Int]) { do { try n.append(layer, inputs: inputs) } catch { fatalError("\(error)") } }
        add(g.dense(8, 6), [0])            // v1
        add(.relu, [1])                    // v2
        add(g.dense(5, 6), [0])            // v3
        add(.sigmoid, [3])                 // v4
        add(.concat, [2, 4])               // v5: [13]
        add(g.dense(4, 13), [5])           // v6
        add(g.dense(4, 8), [2])            // v7: fan-out of v2
        add(.add, [6, 7])                  // v8
        add(.leakyReLU(slope: 0.1), [8])   // v9
        add(g.dense(3, 4), [9])            // v10
        add(.softmax, [10])                // v11
        return n
    }
}

final class GraphTests: XCTestCase {
    func testForwardEqualsFloat64Reference() throws {
        var g = Gen(900)
        for n in [GraphFixtures.residualConcat(&g), GraphFixtures.residualConcat(&g, smooth: true), GraphFixtures.affineBranches(&g)] {
            XCTAssertFalse(n.isChain)
            let rows = 3
            let x = g.normals(rows * n.inputSize)
            var reference = Reference(n)
            assertClose(n.forward(x, rows: rows), reference.forwardBatch(x, rows: rows), rel: 1e-5, "graph forward")
        }
    }

    /// The pullback through add (both inputs receive the cotangent), concat (each its slice) and fan-out
    /// (the cotangents summed) equals float64 central differences of the reference forward.
    func testPullbackEqualsFiniteDifferences() throws {
        var g = Gen(901)
        for n in [GraphFixtures.residualConcat(&g, smooth: true), GraphFixtures.affineBranches(&g), GraphFixtures.residualConcat(&g)] {
            let rows = 2
            let x = g.normals(rows * n.inputSize)
            let c = g.normals(rows * n.outputSize)
            var reference = Reference(n)
            let fd = reference.finiteDifferenceGradient(x, rows: rows, cotangent: c)
            if reference.kink < 1e-3 { continue }  // a ReLU too close to its kink for differences
            assertClose(try n.gradient(x, rows: rows, cotangent: c), fd, rel: 1e-3, "graph gradient")
        }
    }

    func testAffinePrefixSpansBranches() throws {
        var g = Gen(902)
        XCTAssertEqual(GraphFixtures.affineBranches(&g).affinePrefixLength, 5, "dense, dense, add, dense, concat")
        // conv → BN → ReLU, with the conv's output (value 1) also read by the residual add: value 2 is not a
        // cut (the add reads value 1 after it), so the prefix ends after the conv (value 1, a cut).
        XCTAssertEqual(GraphFixtures.residualConcat(&g).affinePrefixLength, 1)
    }

    /// Integrated Gradients through the prefix optimisation equals a plain Riemann sum of gradients at the
    /// path points (no prefix), and completeness holds.
    func testIntegratedGradientsOnGraphs() throws {
        var g = Gen(903)
        for n in [GraphFixtures.affineBranches(&g), GraphFixtures.residualConcat(&g, smooth: true)] {
            let rows = 3, steps = 64, d = n.inputSize
            let x = g.normals(rows * d), base = g.normals(rows * d)
            let ig = try n.integratedGradients(x, rows: rows, baselines: base, targets: [1], steps: steps, method: .riemannMiddle)
            var plain = [Double](repeating: 0, count: rows * d)
            for k in 0..<steps {
                let a = (Float(k) + 0.5) / Float(steps)
                let points = zip(x, base).map { $1 + a * ($0 - $1) }
                let s = try n.saliency(points, rows: rows, targets: [1], absolute: false)
                for j in 0..<(rows * d) { plain[j] += Double(s[j]) * Double(x[j] - base[j]) / Double(steps) }
            }
            assertClose(ig.attributions, plain, rel: 1e-4, "IG through the prefix vs plain Riemann sum")
            let fx = n.forward(x, rows: rows), fb = n.forward(base, rows: rows)
            for r in 0..<rows {
                let total = (0..<d).reduce(0.0) { $0 + Double(ig.attributions[r * d + $1]) }
                let change = Double(fx[r * n.outputSize + 1] - fb[r * n.outputSize + 1])
                XCTAssertEqual(total, change, accuracy: 2e-3 * max(1, abs(change)), "completeness, example \(r)")
            }
        }
    }

    func testEveryGradientMethodRunsOnGraphs() throws {
        var g = Gen(904)
        let n = GraphFixtures.residualConcat(&g)
        let rows = 4
        let x = g.normals(rows * n.inputSize), refs = g.normals(5 * n.inputSize)
        let s = try n.saliency(x, rows: rows, targets: [0, 1, 2, 3], absolute: false)
        XCTAssertEqual(s, try n.saliency(x, rows: rows, targets: [0, 1, 2, 3], absolute: false))
        let ixg = try n.inputXGradient(x, rows: rows, targets: [2])
        XCTAssertEqual(ixg.count, x.count)
        let eg = try n.expectedGradients(x, rows: rows, references: refs, referenceCount: 5, targets: [1], samples: 16, seed: 3)
        XCTAssert(eg.allSatisfy { $0.isFinite })
        let sg = try n.smoothGrad(x, rows: rows, targets: [1], aggregation: .smoothGrad, samples: 8, stdev: 0.1, seed: 4)
        XCTAssert(sg.allSatisfy { $0.isFinite })
        // Chunking changes nothing but rounding: chunks of one row are the same GEMM per row.
        assertClose(try n.saliency(x, rows: rows, targets: [1], absolute: false, internalBatchSize: 1),
                    try n.saliency(x, rows: rows, targets: [1], absolute: false), rel: 1e-5, "saliency chunked")
    }

    /// A final Dense is pulled back by a row of W instead of a skinny GEMM; with a Dropout (the identity)
    /// after it the GEMM path runs instead. The one-hot seed makes the GEMM add only zeros to the single
    /// product, so both are bit-identical.
    func testFinalDenseShortcutIsBitIdentical() throws {
        var g = Gen(905)
        let chain = IntegratedGradientsTests.smoothMLP(&g)
        let padded = try chain.appending(.dropout(p: 0))
        let rows = 5
        let x = g.normals(rows * chain.inputSize)
        XCTAssertEqual(try chain.saliency(x, rows: rows, targets: [0, 1, 2, 1, 0], absolute: false),
                       try padded.saliency(x, rows: rows, targets: [0, 1, 2, 1, 0], absolute: false))
        XCTAssertEqual(try chain.integratedGradients(x, rows: rows, targets: [2], steps: 20).attributions,
                       try padded.integratedGradients(x, rows: rows, targets: [2], steps: 20).attributions)
    }

    func testGraphErrors() throws {
        var n = try Network(inputShape: [4])
        try n.append(.dense(try .init(weight: [Float](repeating: 1, count: 12), bias: nil, outFeatures: 3, inFeatures: 4)))
        assertError(.shapeMismatch, mentioning: "Add needs inputs of one shape") { try n.append(.add, inputs: [0, 1]) }
        assertError(.invalidArgument, mentioning: "at least two") { try n.append(.add, inputs: [1]) }
        assertError(.outOfRange, mentioning: "does not exist") { try n.append(.relu, inputs: [5]) }
        assertError(.invalidArgument, mentioning: "exactly one") { try n.append(.relu, inputs: [0, 1]) }
        var images = try Network(inputShape: [2, 4, 4])
        try images.append(.avgPool2d(try .init(kernel: [2, 2])))
        assertError(.shapeMismatch, mentioning: "Concat joins along the first axis") { try images.append(.concat, inputs: [0, 1]) }
        try images.append(.concat, inputs: [0, 0])
        XCTAssertEqual(images.outputShape, [4, 4, 4])
    }

    func testSoftmaxAfterGraphAndActivationDerivatives() throws {
        // Second derivatives of every activation against central differences of the first.
        for layer: Layer in [.elu(alpha: 0.7), .softplus(beta: 3), .sigmoid, .tanh, .relu, .leakyReLU(slope: 0.1)] {
            let f = Activation(layer)!
            for v: Float in [-1.3, -0.2, 0.4, 1.7] {
                let h: Float = 1e-2
                let d1 = { (u: Float) in f.derivative(at: u, output: f.value(u)) }
                let fd = (d1(v + h) - d1(v - h)) / (2 * h)
                XCTAssertEqual(f.secondDerivative(at: v, output: f.value(v)), fd, accuracy: 2e-3, "\(layer) at \(v)")
                let fd1 = (f.value(v + h) - f.value(v - h)) / (2 * h)
                XCTAssertEqual(f.derivative(at: v, output: f.value(v)), fd1, accuracy: 2e-3, "\(layer)' at \(v)")
            }
        }
    }
}
