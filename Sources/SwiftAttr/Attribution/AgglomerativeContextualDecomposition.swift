// Agglomerative Contextual Decomposition (Singh, Murdoch, Yu 2019): a hierarchy of interacting groups of
// input positions (1-D: positions along a sequence; 2-D: blocks of pixels), grown from the features whose
// group score is largest. The agglomeration follows the authors' `acd` package (agg_1d.agglomerate,
// agg_2d.agglomerate and agglomerate_final) step for step, including its tie rules and label numbering,
// so the hierarchies agree with it; what differs is that every candidate group of one step is scored in
// ONE batched call of a ``GroupScorer`` (hundreds of masks), where acd runs CD once per candidate.
//
// The scorer is generic: CD of a network (ACDScorer.swift) or any closed form (the tests).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scores groups of input elements in batches: `score(masks, m)` receives `m` masks of `inputSize` values
/// each (m × inputSize, row-major; 1 marks an element of the group, 0 the rest) and returns `m` scores.
public struct GroupScorer {
    /// Elements per mask: the network's input size (a position's or pixel's mask covers its channels).
    public let inputSize: Int
    /// The batched scoring function.
    public let score: ([Float], Int) throws -> [Float]

    public init(inputSize: Int, score: @escaping ([Float], Int) throws -> [Float]) {
        self.inputSize = inputSize
        self.score = score
    }

    /// A scorer from relevant logits (`relevantLogits(masks, m)` returns m × classes values, e.g. the
    /// relevant part of CD at the output): a group's score is the target's logit, or for two classes with
    /// ``ACDScoreRule/automatic`` or ``ACDScoreRule/targetMinusOther`` the target's minus the other's.
    public static func fromRelevantLogits(inputSize: Int, classes: Int, target: Int, rule: ACDScoreRule = .automatic,
                                          relevantLogits: @escaping ([Float], Int) throws -> [Float]) throws -> GroupScorer {
        try Check.positive(classes, "classes")
        guard target >= 0, target < classes else {
            throw SwiftAttrError(.outOfRange, "target must be in 0..<\(classes) (got \(target))")
        }
        let subtract: Bool
        switch rule {
        case .automatic: subtract = classes == 2
        case .target: subtract = false
        case .targetMinusOther:
            guard classes == 2 else {
                throw SwiftAttrError.invalid("score_rule target_minus_other needs two classes (the model has \(classes))")
            }
            subtract = true
        }
        return GroupScorer(inputSize: inputSize) { masks, m in
            let logits = try relevantLogits(masks, m)
            guard logits.count == m * classes else {
                throw SwiftAttrError.shape("scorer: the relevant logits of \(m) masks must be \(m) × \(classes) values (got \(logits.count))")
            }
            return (0..<m).map { r in
                subtract ? logits[r * classes + target] - logits[r * classes + 1 - target] : logits[r * classes + target]
            }
        }
    }

    /// Calls ``score`` and checks its answer: `m` finite values.
    func scores(_ masks: [Float], _ m: Int) throws -> [Float] {
        let s = try score(masks, m)
        guard s.count == m else { throw SwiftAttrError.shape("scorer returned \(s.count) scores for \(m) masks") }
        for (i, v) in s.enumerated() where !v.isFinite {
            throw SwiftAttrError(.nonFinite, "scorer returned a non-finite score (\(v)) for mask \(i)")
        }
        return s
    }
}

/// How a group's relevant logits become its score (acd: target minus other for two classes, else target).
public enum ACDScoreRule: Int32, CaseIterable, Sendable {
    /// Two classes: target − other; otherwise the target.
    case automatic = 0
    /// The target's relevant logit.
    case target = 1
    /// Target − other (two classes only).
    case targetMinusOther = 2
}

/// Options of the agglomeration.
public struct ACDOptions: Sendable {
    /// Percentile of the candidates' scores (1-D: of their absolute values) at or above which they are
    /// selected in one iteration (acd's `percentile_include`).
    public var percentileInclude: Double
    /// Positions (1-D) or pixels per side (2-D) of one unit block (acd's `sweep_dim`).
    public var blockSize: Int
    /// Largest number of iterations (acd's `num_iters`); nil: until one component covers everything (1-D)
    /// or every block is selected (2-D).
    public var maxIterations: Int?

    public init(percentileInclude: Double = 99.5, blockSize: Int = 1, maxIterations: Int? = nil) {
        self.percentileInclude = percentileInclude
        self.blockSize = blockSize
        self.maxIterations = maxIterations
    }
}

/// One level of the hierarchy: a component label for every unit (0 = not selected) and each component's
/// score, by ascending label.
public struct ACDLevel: Equatable, Sendable {
    /// Label of each unit (block grid, row-major for 2-D); 0 = not in any component.
    public let labels: [Int]
    /// The labels present, ascending.
    public let components: [Int]
    /// The score of each component of ``components`` (the group score of its units).
    public let scores: [Float]
}

/// One step of the final greedy merge (2-D): component `absorbed` joins `kept`.
public struct ACDMerge: Equatable, Sendable {
    public let kept: Int
    public let absorbed: Int
    /// The score of the union.
    public let score: Float
    /// s(kept ∪ absorbed) − max(s(kept), s(absorbed)), the largest over all pairs.
    public let gain: Float
}

/// A hierarchy of interacting groups.
public struct ACDHierarchy: Sendable {
    /// The unit grid: [units] (1-D) or [rows, columns] of blocks (2-D).
    public let gridShape: [Int]
    public let blockSize: Int
    /// The score of each unit alone.
    public let unitScores: [Float]
    /// The score of the whole input.
    public let fullScore: Float
    /// The levels, coarsening: the ``iterationLevels`` of the iterations, then one per final merge.
    public let levels: [ACDLevel]
    public let iterationLevels: Int
    /// The final merges (2-D), in order; level `iterationLevels + k` is the result of merge k.
    public let merges: [ACDMerge]
    /// For each unit, the first level whose components contain it (`levels.count` if none does): the order
    /// in which units joined the hierarchy.
    public let selectionLevel: [Int]
}

/// Agglomerative Contextual Decomposition over a ``GroupScorer``.
public enum ACD {
    /// Largest mask buffer of one scorer call (2^24 floats, 64 MiB); a step with more candidates is
    /// scored in several calls.
    static let maskBudget = 1 << 24

    /// The hierarchy over a sequence of `length` positions (input `channels` × `length`, channel-major),
    /// acd's agg_1d.agglomerate: single units scored; threshold at a percentile of |score| (for five or
    /// fewer remaining: 59, 49, 59, 49, 0); then per iteration the components (maximal runs of selected
    /// units) are scored, their left and right neighbours by s(comp ∪ nb) − s(comp), already selected
    /// units are dropped and the threshold selects more; a level per iteration, until one component
    /// covers the sequence. Units are blocks of `blockSize` positions (acd's 1-D code runs with
    /// sweep_dim 1 only: its sweep_dim > 1 windows overlap and do not match its masks).
    public static func agglomerate1D(length: Int, channels: Int = 1, scorer: GroupScorer, options: ACDOptions) throws -> ACDHierarchy {
        let geometry = try Geometry(dims: [length], channels: channels, scorer: scorer, options: options)
        let u = geometry.units
        let batch = BatchScorer(geometry, scorer)
        let (unitScores, fullScore) = try batch.scoreUnits()
        var track = unitScores.map(Double.init)
        var selected = threshold1D(track, options.percentileInclude)
        var levels: [ACDLevel] = []
        var iteration = 0
        while iteration < (options.maxIterations ?? u + 1) {
            iteration += 1
            let labels = labelRuns(selected)
            let count = labels.max() ?? 0   // ≥ 1: every threshold selects at least the largest score
            var lo = [Int](repeating: u, count: count + 1), hi = [Int](repeating: -1, count: count + 1)
            for (i, l) in labels.enumerated() where l > 0 { lo[l] = min(lo[l], i); hi[l] = max(hi[l], i) }
            // One batch: each component, then its left and right neighbours (acd's order, which decides
            // which component a unit between two of them is scored against: the later one).
            func neighbours(_ l: Int) -> [Int] { [lo[l] - 1, hi[l] + 1].filter { $0 >= 0 && $0 < u } }
            var groups: [Group] = []
            for l in stride(from: 1, through: count, by: 1) {
                let comp = Array(lo[l]...hi[l]), id = batch.id(comp)
                groups.append(Group([comp], id, -1))
                for nb in neighbours(l) { groups.append(Group([comp, [nb]], id, nb)) }
            }
            let s = try batch.score(groups)
            var scores: [Float] = [], at = 0
            for l in stride(from: 1, through: count, by: 1) {
                let sc = s[at]; at += 1
                scores.append(sc)
                for nb in neighbours(l) { track[nb] = Double(s[at]) - Double(sc); at += 1 }
            }
            levels.append(ACDLevel(labels: labels, components: Array(stride(from: 1, through: count, by: 1)), scores: scores))
            for i in 0..<u where selected[i] { track[i] = .nan }
            let new = threshold1D(track, options.percentileInclude)
            if !new.contains(true) { break }
            for i in 0..<u where new[i] { selected[i] = true }
        }
        return ACDHierarchy(gridShape: [u], blockSize: options.blockSize, unitScores: unitScores, fullScore: fullScore,
                            levels: levels, iterationLevels: levels.count, merges: [],
                            selectionLevel: selectionLevels(levels, units: u))
    }

    /// The hierarchy over a `height` × `width` image (input `channels` × height × width; a pixel's mask
    /// covers its channels) in blocks of `blockSize` pixels, acd's agg_2d.agglomerate and
    /// agglomerate_final: blocks scored alone; threshold at a percentile of the scores (15 lower once a
    /// third is selected); per iteration the selected blocks are labelled (8-connected, in raster order,
    /// labels carried over from the previous level as acd's establish_correspondence does), each
    /// component scored and its 4-neighbour blocks scored s(comp ∪ block) − s(comp); the new selection is
    /// smoothed (an unselected block with at least 3 selected 4-neighbours joins). Then, from the last
    /// level, the pair of components with the largest s(c₁ ∪ c₂) − max(s₁, s₂) merges until one remains.
    /// The iterations stop once every block is selected (acd compares the selection with H·W pixels, so
    /// with blocks of more than one pixel it cannot stop there and fails if it gets that far).
    public static func agglomerate2D(height: Int, width: Int, channels: Int = 1, scorer: GroupScorer, options: ACDOptions) throws -> ACDHierarchy {
        let geometry = try Geometry(dims: [height, width], channels: channels, scorer: scorer, options: options)
        let rows = geometry.grid[0], cols = geometry.grid[1], u = geometry.units
        let batch = BatchScorer(geometry, scorer)
        let (unitScores, fullScore) = try batch.scoreUnits()
        var track = unitScores.map(Double.init)
        var selected = threshold2D(track, options.percentileInclude)
        var levels: [ACDLevel] = []
        var iteration = 0
        while iteration < (options.maxIterations ?? u + 1) {
            if !selected.contains(false) { break }
            iteration += 1
            let raw = labelComponents8(selected, rows: rows, cols: cols)
            let labels = levels.last.flatMap { correspond(previous: $0.labels, raw) } ?? raw
            let components = Array(Set(labels.filter { $0 > 0 })).sorted()
            var members = [Int: [Int]]()
            for (i, l) in labels.enumerated() where l > 0 { members[l, default: []].append(i) }
            // One batch: each component, then its unselected 4-neighbour blocks in raster order (a
            // selected neighbour's score is dropped below, so it is not computed).
            var groups: [Group] = [], neighbours: [[Int]] = []
            for l in components {
                let comp = members[l]!, id = batch.id(comp)
                groups.append(Group([comp], id, -1))
                var inComp = [Bool](repeating: false, count: u)
                for i in comp { inComp[i] = true }
                var nbs: [Int] = []
                for i in 0..<u where !selected[i] {
                    let r = i / cols, c = i % cols
                    if (r > 0 && inComp[i - cols]) || (c > 0 && inComp[i - 1]) || (r + 1 < rows && inComp[i + cols]) || (c + 1 < cols && inComp[i + 1]) {
                        nbs.append(i); groups.append(Group([comp, [i]], id, i))
                    }
                }
                neighbours.append(nbs)
            }
            let s = try batch.score(groups)
            var scores: [Float] = [], at = 0
            for nbs in neighbours {
                let sc = s[at]; at += 1
                scores.append(sc)
                for nb in nbs { track[nb] = Double(s[at]) - Double(sc); at += 1 }
            }
            levels.append(ACDLevel(labels: labels, components: components, scores: scores))
            for i in 0..<u where selected[i] { track[i] = .nan }
            let new = threshold2D(track, options.percentileInclude)
            selected = smooth(selected, new, rows: rows, cols: cols)
        }
        let iterationLevels = levels.count
        var merges: [ACDMerge] = []
        if var level = levels.last {
            var score = [Int: Float]()
            for (k, l) in level.components.enumerated() { score[l] = level.scores[k] }
            var members = [Int: [Int]]()
            for (i, l) in level.labels.enumerated() where l > 0 { members[l, default: []].append(i) }
            var ids = members.mapValues { batch.id($0) }
            while score.count > 1 {
                // Every pair's union in one call (only those with the last merged component are new).
                let comps = score.keys.sorted()
                var pairs: [Pair] = []
                for (x, a) in comps.enumerated() { for b in comps[(x + 1)...] { pairs.append(Pair(a, b)) } }
                let s = try batch.score(pairs.map { Group([members[$0.a]!, members[$0.b]!], ids[$0.a]!, -2 - ids[$0.b]!) })
                // acd: the first pair (lexicographic) with the largest gain, compared in double.
                var best: Pair? = nil, bestGain = -Double.infinity, union: Float = 0
                for (k, p) in pairs.enumerated() {
                    let g = Double(s[k]) - Double(max(score[p.a]!, score[p.b]!))
                    if g > bestGain { bestGain = g; best = p; union = s[k] }
                }
                guard let pair = best else { break }
                merges.append(ACDMerge(kept: pair.a, absorbed: pair.b, score: union, gain: Float(bestGain)))
                members[pair.a] = (members[pair.a]! + members[pair.b]!).sorted()
                members[pair.b] = nil
                ids[pair.a] = batch.id(members[pair.a]!)
                ids[pair.b] = nil
                score[pair.a] = union
                score[pair.b] = nil
                let labels = level.labels.map { $0 == pair.b ? pair.a : $0 }
                let remaining = score.keys.sorted()
                level = ACDLevel(labels: labels, components: remaining, scores: remaining.map { score[$0]! })
                levels.append(level)
            }
        }
        return ACDHierarchy(gridShape: [rows, cols], blockSize: options.blockSize, unitScores: unitScores, fullScore: fullScore,
                            levels: levels, iterationLevels: iterationLevels, merges: merges,
                            selectionLevel: selectionLevels(levels, units: u))
    }

    /// An unordered pair of component labels, a < b.
    struct Pair: Hashable {
        let a: Int, b: Int
        init(_ a: Int, _ b: Int) { self.a = a; self.b = b }
    }

    // MARK: Units and masks

    /// The unit grid of an input (blocks of `blockSize` along each spatial axis, the last ones cut) and
    /// the masks of groups of units.
    struct Geometry {
        let dims: [Int], channels: Int, block: Int, grid: [Int]
        var units: Int { grid.reduce(1, *) }
        var plane: Int { dims.reduce(1, *) }

        init(dims: [Int], channels: Int, scorer: GroupScorer, options: ACDOptions) throws {
            for (d, name) in zip(dims, dims.count == 1 ? ["length"] : ["height", "width"]) { try Check.positive(d, name) }
            try Check.positive(channels, "channels")
            try Check.positive(options.blockSize, "block_size")
            guard options.percentileInclude >= 0, options.percentileInclude <= 100 else {
                throw SwiftAttrError.invalid("percentile_include must be in [0, 100] (got \(options.percentileInclude))")
            }
            if let n = options.maxIterations { try Check.positive(n, "max_iterations") }
            let p = try Check.count(dims + [channels], "input")
            guard scorer.inputSize == p else {
                throw SwiftAttrError.shape("scorer: its input size \(scorer.inputSize) is not channels × \(dims.map(String.init).joined(separator: " × ")) = \(p)")
            }
            self.dims = dims; self.channels = channels; self.block = options.blockSize
            self.grid = dims.map { ($0 + options.blockSize - 1) / options.blockSize }
        }

        /// Sets the mask of unit `unit` in `row` (one mask of channels × plane values).
        func mark(_ unit: Int, _ row: UnsafeMutablePointer<Float>) {
            if dims.count == 1 {
                let lo = unit * block, hi = min(lo + block, dims[0])
                for ch in 0..<channels { for i in lo..<hi { row[ch * plane + i] = 1 } }
            } else {
                let br = unit / grid[1], bc = unit % grid[1], w = dims[1]
                let r0 = br * block, r1 = min(r0 + block, dims[0]), c0 = bc * block, c1 = min(c0 + block, w)
                for ch in 0..<channels { for r in r0..<r1 { for c in c0..<c1 { row[ch * plane + r * w + c] = 1 } } }
            }
        }

    }

    /// A group of units to score: the union of `parts` (disjoint lists of units), known to the memo as
    /// (id of a group, extra): extra −1 for the group itself, a unit u ≥ 0 for group ∪ {u}, −2 − id′ for
    /// group ∪ group id′. Keys are cheap (no hashing of long unit lists per candidate).
    struct Group {
        let parts: [[Int]]
        let key: Key
        init(_ parts: [[Int]], _ base: Int, _ extra: Int) { self.parts = parts; self.key = Key(base: base, extra: extra) }
    }

    struct Key: Hashable {
        let base: Int, extra: Int
    }

    /// Scores groups of units through a ``GroupScorer``, remembering every group's score: a component that
    /// did not change from one iteration to the next (most of them), its candidates and the pairs of the
    /// final merge not involving the last merged component cost nothing again. (acd rescores them; the
    /// scorer is a function of the group, so the hierarchy is the same.)
    final class BatchScorer {
        let geometry: Geometry
        let scorer: GroupScorer
        /// Floats of mask per scorer call at most (but one mask at least).
        let budget: Int
        private var ids: [[Int]: Int] = [:]
        private var memo: [Key: Float] = [:]

        init(_ geometry: Geometry, _ scorer: GroupScorer, budget: Int = ACD.maskBudget) {
            self.geometry = geometry
            self.scorer = scorer
            self.budget = budget
        }

        /// The id of the group of `units` (ascending): the same for the same units.
        func id(_ units: [Int]) -> Int {
            if let i = ids[units] { return i }
            let i = ids.count
            ids[units] = i
            return i
        }

        /// The scores of `groups`: those not scored before in as few scorer calls as ``budget`` allows
        /// (one, for inputs up to thousands of elements).
        func score(_ groups: [Group]) throws -> [Float] {
            var missing: [Group] = [], queued = Set<Key>()
            for g in groups where memo[g.key] == nil && queued.insert(g.key).inserted { missing.append(g) }
            let p = geometry.channels * geometry.plane
            let perCall = max(1, budget / p)
            var start = 0
            while start < missing.count {
                let end = min(start + perCall, missing.count)
                var masks = [Float](repeating: 0, count: (end - start) * p)
                masks.withUnsafeMutableBufferPointer { m in
                    for g in start..<end {
                        for part in missing[g].parts { for unit in part { geometry.mark(unit, m.baseAddress! + (g - start) * p) } }
                    }
                }
                let s = try scorer.scores(masks, end - start)
                for g in start..<end { memo[missing[g].key] = s[g - start] }
                start = end
            }
            return groups.map { memo[$0.key]! }
        }

        /// The score of every unit alone and of the whole input, in one call.
        func scoreUnits() throws -> ([Float], Float) {
            let u = geometry.units
            let all = Array(0..<u)
            let s = try score((0..<u).map { Group([[$0]], id([$0]), -1) } + [Group([all], id(all), -1)])
            return (Array(s[0..<u]), s[u])
        }
    }

    // MARK: Thresholds, labelling, smoothing (acd's rules)

    /// numpy's `percentile(values, q)` with linear interpolation (`nanpercentile` of the non-NaN values):
    /// index (n − 1)·q/100 between the sorted neighbours, interpolated as numpy's `_lerp` does.
    static func percentile(_ values: [Double], _ q: Double) -> Double {
        let v = values.sorted(), n = v.count
        let index = Double(n - 1) * (q / 100)
        let below = Swift.max(0, Swift.min(Int(index.rounded(.down)), n - 1)), above = Swift.min(below + 1, n - 1)
        let t = index - Double(below), a = v[below], b = v[above], d = b - a
        return t >= 0.5 ? b - d * (1 - t) : a + d * t
    }

    /// acd agg_1d.threshold_scores (absolute): |score| at or above the percentile, which is 59, 49, 59, 49
    /// or 0 when 5, 4, 3, 2 or 1 candidates remain; NaN marks the selected ones.
    static func threshold1D(_ scores: [Double], _ percentileInclude: Double) -> [Bool] {
        let left = scores.filter { !$0.isNaN }.map(abs)
        guard !left.isEmpty else { return [Bool](repeating: false, count: scores.count) }
        let forced: [Int: Double] = [5: 59, 4: 49, 3: 59, 2: 49, 1: 0]
        let t = percentile(left, forced[left.count] ?? percentileInclude)
        return scores.map { !$0.isNaN && abs($0) >= t }
    }

    /// acd agg_2d.threshold_scores: scores at or above the percentile, 15 lower once more than a third are
    /// selected (NaN), lowered by 4 until something is selected.
    static func threshold2D(_ scores: [Double], _ percentileInclude: Double) -> [Bool] {
        let left = scores.filter { !$0.isNaN }
        guard !left.isEmpty else { return [Bool](repeating: false, count: scores.count) }
        var q = percentileInclude
        if Double(scores.count - left.count) > Double(scores.count) / 3 { q -= 15 }
        while true {
            let t = percentile(left, Swift.max(q, 0))
            let picked = scores.map { !$0.isNaN && $0 >= t }
            if picked.contains(true) || q <= 0 { return picked }
            q -= 4
        }
    }

    /// Maximal runs of selected units, labelled 1, 2, … from the left (skimage's label, connectivity 1).
    static func labelRuns(_ selected: [Bool]) -> [Int] {
        var labels = [Int](repeating: 0, count: selected.count), n = 0
        for i in selected.indices where selected[i] {
            if i == 0 || !selected[i - 1] { n += 1 }
            labels[i] = n
        }
        return labels
    }

    /// 8-connected components of a grid, labelled 1, 2, … in raster order of their first cell (skimage's
    /// label with connectivity 2).
    static func labelComponents8(_ selected: [Bool], rows: Int, cols: Int) -> [Int] {
        var labels = [Int](repeating: 0, count: selected.count), n = 0
        var stack: [Int] = []
        for start in selected.indices where selected[start] && labels[start] == 0 {
            n += 1
            labels[start] = n
            stack.append(start)
            while let i = stack.popLast() {
                let r = i / cols, c = i % cols
                for dr in -1...1 {
                    for dc in -1...1 {
                        let rr = r + dr, cc = c + dc
                        guard rr >= 0, rr < rows, cc >= 0, cc < cols else { continue }
                        let j = rr * cols + cc
                        if selected[j] && labels[j] == 0 { labels[j] = n; stack.append(j) }
                    }
                }
            }
        }
        return labels
    }

    /// acd's establish_correspondence: a component keeps the smallest label of the previous level's
    /// components it contains; new components take the smallest free labels of 1…11, the last new one
    /// first. nil where acd's rule fails (a label beyond 11 needed or taken twice): acd then keeps the
    /// raster labels.
    static func correspond(previous: [Int], _ raw: [Int]) -> [Int]? {
        var pool = Array(1...11)
        var out = [Int](repeating: 0, count: raw.count)
        let count = raw.max() ?? 0
        var newCounter = 0
        var cells = [[Int]](repeating: [], count: count + 1)
        for (i, l) in raw.enumerated() where l > 0 { cells[l].append(i) }
        var fresh: [Int: [Int]] = [:]
        for l in stride(from: 1, through: count, by: 1) {
            let matches = Set(cells[l].map { previous[$0] }.filter { $0 > 0 })
            if let m = matches.min() {
                guard let k = pool.firstIndex(of: m) else { return nil }
                pool.remove(at: k)
                for i in cells[l] { out[i] = m }
            } else {
                newCounter -= 1
                fresh[newCounter] = cells[l]
            }
        }
        while newCounter < 0 {
            guard let m = pool.first else { return nil }
            pool.removeFirst()
            for i in fresh[newCounter]! { out[i] = m }
            newCounter += 1
        }
        return out
    }

    /// acd's smooth_im_thresh: the union of both selections, plus every unselected cell with at least 3
    /// selected 4-neighbours.
    static func smooth(_ old: [Bool], _ new: [Bool], rows: Int, cols: Int) -> [Bool] {
        let union = zip(old, new).map { $0 || $1 }
        var out = union
        for i in union.indices where !union[i] {
            let r = i / cols, c = i % cols
            var n = 0
            if r > 0 && union[i - cols] { n += 1 }
            if r + 1 < rows && union[i + cols] { n += 1 }
            if c > 0 && union[i - 1] { n += 1 }
            if c + 1 < cols && union[i + 1] { n += 1 }
            if n >= 3 { out[i] = true }
        }
        return out
    }

    /// For each unit, the first level that contains it (`levels.count` if none).
    static func selectionLevels(_ levels: [ACDLevel], units: Int) -> [Int] {
        var first = [Int](repeating: levels.count, count: units)
        for (t, level) in levels.enumerated().reversed() { for i in 0..<units where level.labels[i] > 0 { first[i] = t } }
        return first
    }
}
