import XCTest
@testable import SwiftAttr

/// Agglomerative Contextual Decomposition on scorers whose group scores are known in closed form:
/// s(S) = Σ_{i∈S} v_i (+ c for every planted pair {i, j} ⊆ S). All values are multiples of 1/8 (or
/// small decimals far from every threshold), so the hierarchies below follow from hand computation.
final class AgglomerativeContextualDecompositionTests: XCTestCase {

    /// A scorer over `units` elements (× `channels` planes, channel-major) with score Σ v_i over the
    /// selected elements plus `c` for every planted pair whose both ends are selected. It checks that each
    /// mask is 0/1 and the same on every channel plane (a position's mask covers all its channels), and
    /// counts its calls.
    final class SetScorer {
        let v: [Float]
        let pairs: [(Int, Int, Float)]
        let channels: Int
        var calls = 0
        var masksSeen = 0
        var groups: [[Int]] = []
        init(_ v: [Float], pairs: [(Int, Int, Float)] = [], channels: Int = 1) {
            self.v = v; self.pairs = pairs; self.channels = channels
        }
        func value(_ selected: (Int) -> Bool) -> Float {
            var s: Float = 0
            for i in v.indices where selected(i) { s += v[i] }
            for (i, j, c) in pairs where selected(i) && selected(j) { s += c }
            return s
        }
        var scorer: GroupScorer {
            let p = v.count * channels
            return GroupScorer(inputSize: p) { masks, m in
                self.calls += 1
                self.masksSeen += m
                XCTAssertEqual(masks.count, m * p)
                return (0..<m).map { r in
                    let row = Array(masks[(r * p)..<((r + 1) * p)])
                    if row.contains(where: { $0 != 0 && $0 != 1 }) { XCTFail("mask values are 0 or 1") }
                    for ch in 1..<max(self.channels, 1)
                    where Array(row[(ch * self.v.count)..<((ch + 1) * self.v.count)]) != Array(row[0..<self.v.count]) {
                        XCTFail("a position's mask covers every channel")
                    }
                    self.groups.append(self.v.indices.filter { row[$0] == 1 })
                    return self.value { row[$0] == 1 }
                }
            }
        }
    }

    /// Positions of component `label` in a level.
    func members(_ level: ACDLevel, _ label: Int) -> [Int] { level.labels.indices.filter { level.labels[$0] == label } }

    /// Invariants of every hierarchy: component scores are the closed form of their members, labels are
    /// the listed components, components only grow (each lies inside one component of the next level).
    func checkInvariants(_ h: ACDHierarchy, _ s: SetScorer, file: StaticString = #filePath, line: UInt = #line) {
        for level in h.levels {
            XCTAssertEqual(Set(level.labels.filter { $0 > 0 }), Set(level.components), file: file, line: line)
            XCTAssertEqual(level.components, level.components.sorted(), file: file, line: line)
            for (k, label) in level.components.enumerated() {
                let m = Set(members(level, label))
                XCTAssertEqual(level.scores[k], s.value { m.contains($0) }, accuracy: 1e-5, file: file, line: line)
            }
        }
        for t in 1..<max(h.levels.count, 1) {
            let a = h.levels[t - 1], b = h.levels[t]
            for label in a.components {
                XCTAssertEqual(Set(members(a, label).map { b.labels[$0] }).count, 1, "components only grow", file: file, line: line)
                XCTAssertFalse(members(a, label).contains { b.labels[$0] == 0 }, file: file, line: line)
            }
        }
    }

    // MARK: 1-D

    /// v = (1, −8, 2, .5, 6, −1), percentile 99.5: |v| ≥ 7.95 picks position 1; the neighbours' gains are
    /// v_0 = 1 and v_2 = 2; with five left the percentile is 59 (threshold 1.36: positions 2 and 4); then
    /// 59 of (.5, 1, 1) = 1 picks 0 and 5; the last one (percentile 0) is 3.
    func test1DHandComputedHierarchy() throws {
        let s = SetScorer([1, -8, 2, 0.5, 6, -1])
        let h = try ACD.agglomerate1D(length: 6, scorer: s.scorer, options: ACDOptions(percentileInclude: 99.5))
        XCTAssertEqual(h.levels.map(\.labels), [[0, 1, 0, 0, 0, 0], [0, 1, 1, 0, 2, 0], [1, 1, 1, 0, 2, 2], [1, 1, 1, 1, 1, 1]])
        XCTAssertEqual(h.levels.map(\.scores), [[-8], [-6, 6], [-5, 5], [0.5]])
        XCTAssertEqual(h.unitScores, [1, -8, 2, 0.5, 6, -1])
        XCTAssertEqual(h.fullScore, 0.5)
        XCTAssertEqual(h.selectionLevel, [2, 0, 1, 3, 1, 2])
        XCTAssertEqual(h.iterationLevels, 4)
        XCTAssertTrue(h.merges.isEmpty)
        XCTAssertEqual(h.gridShape, [6])
        checkInvariants(h, s)
    }

    /// A planted interaction between positions 5 and 6 (c = 5, invisible in the single-position scores
    /// where v_6 = .05): once 5 is picked, 6's gain v_6 + c is the largest, so {5, 6} is the second level.
    func test1DPlantedInteractionMergesFirst() throws {
        let v: [Float] = [0.3, -0.2, 0.1, 0.4, -0.1, 1.0, 0.05, 0.2, -0.3, 0.15]
        let s = SetScorer(v, pairs: [(5, 6, 5)])
        let h = try ACD.agglomerate1D(length: 10, scorer: s.scorer, options: ACDOptions(percentileInclude: 99.5))
        XCTAssertEqual(members(h.levels[0], 1), [5])
        XCTAssertEqual(h.levels[1].components.count, 1)
        XCTAssertEqual(members(h.levels[1], 1), [5, 6])
        XCTAssertEqual(h.levels[1].scores[0], 6.05, accuracy: 1e-6)
        XCTAssertEqual(h.levels.last!.labels, Array(repeating: 1, count: 10), "the last level is one component over everything")
        XCTAssertLessThanOrEqual(h.levels.count, 10)
        checkInvariants(h, s)
    }

    /// Channels and blocks: a [2, 7] input in blocks of 3 has units {0,1,2}, {3,4,5}, {6}; each unit's
    /// score is the sum over its positions (the scorer checks every mask covers both channel planes).
    func test1DBlocksAndChannels() throws {
        let v: [Float] = [1, 2, 3, 4, 5, 6, 7]
        let s = SetScorer(v, channels: 2)
        let h = try ACD.agglomerate1D(length: 7, channels: 2, scorer: s.scorer, options: ACDOptions(percentileInclude: 50, blockSize: 3))
        XCTAssertEqual(h.gridShape, [3])
        XCTAssertEqual(h.unitScores, [6, 15, 7])
        XCTAssertEqual(h.fullScore, 28)
        XCTAssertEqual(h.levels.last!.labels, [1, 1, 1])
        XCTAssertEqual(h.levels.last!.scores, [28])
    }

    func test1DTwoClassScoreIsTargetMinusOther() throws {
        // relevant logits: class 0 = Σ mask, class 1 = Σ 2·mask·v.
        let v: [Float] = [1, -2, 3]
        let scorer = try GroupScorer.fromRelevantLogits(inputSize: 3, classes: 2, target: 1) { masks, m in
            (0..<m).flatMap { r -> [Float] in
                let row = masks[(r * 3)..<((r + 1) * 3)]
                return [row.reduce(0, +), zip(row, v).map { 2 * $0 * $1 }.reduce(0, +)]
            }
        }
        let h = try ACD.agglomerate1D(length: 3, scorer: scorer, options: ACDOptions())
        XCTAssertEqual(h.unitScores, [1, -5, 5])   // 2·v_i − 1
        XCTAssertEqual(h.fullScore, 1 * 2 - 4 + 6 - 3)
        let three = try GroupScorer.fromRelevantLogits(inputSize: 1, classes: 3, target: 2) { _, m in
            Array(repeating: [1, 2, 7] as [Float], count: m).flatMap { $0 }
        }
        XCTAssertEqual(try three.score([1], 1), [7], "more than two classes: the target's relevant logit")
    }

    // MARK: 2-D

    /// Four corner pixels (4, 4.25, 4.5, 4.75) and small values elsewhere, percentile 90 over 36 pixels:
    /// the first level is the four corners (raster-order labels 1…4); with one iteration the final merges
    /// follow: the planted pair {(0,0), (5,5)} (gain 4 + 4.75 + 3 − 4.75 = 7) first, then by the linear
    /// gain min(s₁, s₂): label 3 (4.5) into 1, then label 2.
    func test2DFinalMergePicksPlantedPairThenLinearGains() throws {
        var v = [Float](repeating: 0, count: 36)
        for i in 0..<36 { v[i] = Float(i % 5) / 16 }
        v[0] = 4; v[5] = 4.25; v[30] = 4.5; v[35] = 4.75
        let s = SetScorer(v, pairs: [(0, 35, 3)])
        let h = try ACD.agglomerate2D(height: 6, width: 6, scorer: s.scorer,
                                      options: ACDOptions(percentileInclude: 90, maxIterations: 1))
        XCTAssertEqual(h.iterationLevels, 1)
        XCTAssertEqual(h.levels[0].components, [1, 2, 3, 4])
        XCTAssertEqual([0, 5, 30, 35].map { h.levels[0].labels[$0] }, [1, 2, 3, 4])
        XCTAssertEqual(h.levels[0].scores, [4, 4.25, 4.5, 4.75])
        XCTAssertEqual(h.merges.map(\.kept), [1, 1, 1])
        XCTAssertEqual(h.merges.map(\.absorbed), [4, 3, 2])
        XCTAssertEqual(h.merges.map(\.score), [11.75, 16.25, 20.5])
        XCTAssertEqual(h.merges.map(\.gain), [7, 4.5, 4.25])
        XCTAssertEqual(h.levels.count, 4)
        XCTAssertEqual(h.levels.last!.components, [1])
        checkInvariants(h, s)
    }

    /// A component keeps its label across levels though a new one appears earlier in raster order:
    /// (3,3) is picked first (label 1); (0,0) next, and is labelled 2 although raster labelling numbers it 1.
    func test2DLabelsCorrespondAcrossLevels() throws {
        var v = [Float](repeating: 0.01, count: 36)
        v[21] = 5; v[0] = 4
        let s = SetScorer(v)
        let h = try ACD.agglomerate2D(height: 6, width: 6, scorer: s.scorer,
                                      options: ACDOptions(percentileInclude: 99, maxIterations: 2))
        XCTAssertEqual(h.levels[0].labels[21], 1)
        XCTAssertEqual(h.levels[1].labels[21], 1)
        XCTAssertEqual(h.levels[1].labels[0], 2)
        checkInvariants(h, s)
    }

    /// Blocks of 2 on a 5×5 image with 3 channels: a 3×3 grid whose units hold 4, 2 or 1 pixels.
    func test2DBlocksAndChannels() throws {
        let s = SetScorer([Float](repeating: 1, count: 25), channels: 3)
        let h = try ACD.agglomerate2D(height: 5, width: 5, channels: 3, scorer: s.scorer,
                                      options: ACDOptions(percentileInclude: 50, blockSize: 2))
        XCTAssertEqual(h.gridShape, [3, 3])
        XCTAssertEqual(h.unitScores, [4, 4, 2, 4, 4, 2, 2, 2, 1])
        XCTAssertEqual(h.fullScore, 25)
        XCTAssertEqual(h.levels.last!.components.count, 1)
        for level in h.levels { XCTAssertEqual(level.labels.count, 9) }
        checkInvariants(h, SetScorer([4, 4, 2, 4, 4, 2, 2, 2, 1]))
    }

    /// Batching: one scorer call for the single units, at most one per iteration and per final merge —
    /// never one per candidate — and hardly a group scored twice (an unchanged component and its candidates
    /// are remembered), so a 28×28 hierarchy needs a few thousand masks, not one call per candidate.
    func test2DScoresEachStepInOneBatchedCall() throws {
        var g = Gen(11)
        let v = g.normals(28 * 28)
        for iterations in [nil, 12] {
            let s = SetScorer(v, pairs: [(100, 500, 2), (300, 301, -1)])
            let h = try ACD.agglomerate2D(height: 28, width: 28, scorer: s.scorer, options: ACDOptions(maxIterations: iterations))
            XCTAssertLessThanOrEqual(s.calls, 1 + h.iterationLevels + h.merges.count)
            XCTAssertGreaterThan(s.masksSeen, 784)
            // Without the memo of scored groups this hierarchy costs 22 thousand masks (acd's count).
            let distinct = Set(s.groups).count
            XCTAssertLessThan(s.masksSeen, distinct + distinct / 4, "hardly any group is scored twice")
            print("ACD 28×28: \(h.iterationLevels) iterations, \(h.merges.count) merges, \(s.masksSeen) masks in \(s.calls) calls")
            XCTAssertEqual(h.levels.last!.components.count, 1)
            XCTAssertLessThanOrEqual(h.levels.count, 2 * 784 - 1)
            checkInvariants(h, s)
            if iterations != nil { XCTAssertGreaterThan(h.merges.count, 0) }
        }
    }

    /// A step whose masks exceed the budget is scored in several calls, with the same scores; groups
    /// already scored (same key) are not scored again.
    func testBatchesSplitAtTheMaskBudgetAndRemember() throws {
        let s = SetScorer([1, 2, 4, 8, 16, 32], channels: 2)
        let geometry = try ACD.Geometry(dims: [2, 3], channels: 2, scorer: s.scorer, options: ACDOptions())
        let batch = ACD.BatchScorer(geometry, s.scorer, budget: 2 * 12 + 5)   // two masks of 12 floats per call
        let a = batch.id([0, 1]), b = batch.id([5])
        XCTAssertEqual(batch.id([0, 1]), a)
        let groups = [ACD.Group([[0, 1]], a, -1), ACD.Group([[0, 1], [3]], a, 3), ACD.Group([[5]], b, -1),
                      ACD.Group([[0, 1], [5]], a, -2 - b), ACD.Group([[0, 1], [4]], a, 4)]
        XCTAssertEqual(try batch.score(groups), [3, 11, 32, 35, 19])
        XCTAssertEqual(s.calls, 3)
        XCTAssertEqual(try batch.score([groups[3], groups[1]]), [35, 11])
        XCTAssertEqual(s.calls, 3, "remembered")
    }

    // MARK: Bad arguments

    func testBadArgumentsNameTheArgument() throws {
        let s = SetScorer([1, 2, 3, 4])
        func expect(_ code: SwiftAttrError.Code, _ word: String, _ body: () throws -> Void) {
            XCTAssertThrowsError(try body()) { error in
                guard let e = error as? SwiftAttrError else { return XCTFail("\(error)") }
                XCTAssertEqual(e.code, code, e.message)
                XCTAssertTrue(e.message.contains(word), e.message)
            }
        }
        expect(.invalidArgument, "percentile_include") { _ = try ACD.agglomerate1D(length: 4, scorer: s.scorer, options: ACDOptions(percentileInclude: 101)) }
        expect(.invalidArgument, "percentile_include") { _ = try ACD.agglomerate1D(length: 4, scorer: s.scorer, options: ACDOptions(percentileInclude: .nan)) }
        expect(.invalidArgument, "block_size") { _ = try ACD.agglomerate1D(length: 4, scorer: s.scorer, options: ACDOptions(blockSize: 0)) }
        expect(.invalidArgument, "max_iterations") { _ = try ACD.agglomerate2D(height: 2, width: 2, scorer: s.scorer, options: ACDOptions(maxIterations: 0)) }
        expect(.invalidArgument, "length") { _ = try ACD.agglomerate1D(length: 0, scorer: s.scorer, options: ACDOptions()) }
        expect(.shapeMismatch, "scorer") { _ = try ACD.agglomerate1D(length: 3, scorer: s.scorer, options: ACDOptions()) }
        expect(.shapeMismatch, "scorer") { _ = try ACD.agglomerate2D(height: 2, width: 3, scorer: s.scorer, options: ACDOptions()) }
        let short = GroupScorer(inputSize: 4) { _, m in [Float](repeating: 0, count: max(m - 1, 0)) }
        expect(.shapeMismatch, "scorer") { _ = try ACD.agglomerate1D(length: 4, scorer: short, options: ACDOptions()) }
        let nan = GroupScorer(inputSize: 4) { _, m in [Float](repeating: .nan, count: m) }
        expect(.nonFinite, "scorer") { _ = try ACD.agglomerate1D(length: 4, scorer: nan, options: ACDOptions()) }
        let logits: ([Float], Int) throws -> [Float] = { _, m in [Float](repeating: 0, count: 3 * m) }
        expect(.outOfRange, "target") { _ = try GroupScorer.fromRelevantLogits(inputSize: 4, classes: 3, target: 3, relevantLogits: logits) }
        expect(.invalidArgument, "score_rule") {
            _ = try GroupScorer.fromRelevantLogits(inputSize: 4, classes: 3, target: 0, rule: .targetMinusOther, relevantLogits: logits)
        }
    }
}
