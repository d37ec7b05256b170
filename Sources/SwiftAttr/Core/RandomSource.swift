import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A sequential seeded generator (xoshiro256**, Blackman & Vigna 2018; its state is four SplitMix64
/// outputs of the seed), for data and tests that draw one stream in order.
///
/// It is not counter-based: draw k is reachable only by drawing the k before it. The stochastic methods
/// (Expected Gradients, SmoothGrad) draw through ``CounterRandom`` instead, so that an example's draws
/// depend on (seed, example, sample) and on nothing else.
public struct RandomSource: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var z = seed
        func splitMix(_ z: inout UInt64) -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        s = (splitMix(&z), splitMix(&z), splitMix(&z), splitMix(&z))
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = Self.rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = Self.rotl(s.3, 45)
        return result
    }

    /// Uniform on [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform integer in 0..<n.
    public mutating func index(_ n: Int) -> Int {
        Int(next() % UInt64(n))
    }

    /// Standard normal deviate (Box–Muller, one value per call; the second is discarded for simplicity
    /// of state).
    public mutating func normal() -> Double {
        var u = uniform()
        while u <= 0 { u = uniform() }
        let v = uniform()
        return (-2 * _log(u)).squareRoot() * _cos(2 * Double.pi * v)
    }
}

/// The counter-based generator of the stochastic methods: Philox4x32-10 (Salmon, Moraes, Dror, Shaw,
/// "Parallel random numbers: as easy as 1, 2, 3", SC 2011; Random123's reference constants).
///
/// Construction: the 64-bit key is the seed (low word first); the 128-bit counter is (example: 64 bits,
/// low word first; sample: 32 bits; block: 32 bits). Ten rounds of Philox, each a pair of 32×32→64-bit
/// multiplications with the key added by a Weyl sequence between rounds, form a bijection of the counter
/// for each key, so distinct (example, sample, block) under one seed never share a block. Block `b` of
/// (seed, example, sample) yields four 32-bit words, used as two uniforms on [0, 1) of 53 bits each
/// (``uniforms(seed:example:sample:block:)``) or two standard normals (``normals(seed:example:sample:block:)``).
///
/// A draw is a pure function of its counter: it does not depend on which thread computes it, in which
/// order, how the path points are chunked, or how the caller split a batch into calls (a call passes
/// each example's index in the whole batch). Known-answer test: Random123's `kat_vectors` for
/// philox4x32 with 10 rounds.
public enum CounterRandom {
    /// Philox4x32-10 of `counter` under `key` (CKernels' `swiftattr_philox4x32`, the one definition the
    /// vectorised normals use too).
    @inline(__always)
    public static func philox(
        counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)
    ) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = counter
        withUnsafeMutableBytes(of: &c) { swiftattr_philox4x32($0.baseAddress!.assumingMemoryBound(to: UInt32.self), key.0, key.1) }
        return c
    }

    /// Block `block` of (seed, example, sample).
    @inline(__always)
    public static func block(seed: UInt64, example: UInt64, sample: UInt32, block: UInt32) -> (UInt32, UInt32, UInt32, UInt32) {
        philox(
            counter: (UInt32(truncatingIfNeeded: example), UInt32(truncatingIfNeeded: example >> 32), sample, block),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }

    /// Two uniforms on [0, 1), 53 bits each, from block `block` of (seed, example, sample).
    @inline(__always)
    public static func uniforms(seed: UInt64, example: UInt64, sample: UInt32, block: UInt32) -> (Double, Double) {
        let w = Self.block(seed: seed, example: example, sample: sample, block: block)
        func unit(_ hi: UInt32, _ lo: UInt32) -> Double { Double((UInt64(hi) << 32 | UInt64(lo)) >> 11) * 0x1.0p-53 }
        return (unit(w.0, w.1), unit(w.2, w.3))
    }

    /// Two independent standard normals from block `block` of (seed, example, sample): Box–Muller on its
    /// two uniforms, (r cos θ, r sin θ) with r = √(−2 ln(1 − u₀)), θ = 2π u₁.
    ///
    /// CKernels computes them (`swiftattr_normal_pair`) with IEEE operations only — its own logarithm, and
    /// sine and cosine after an exact reduction of 4u₁ to the nearest quadrant — so the bits are the same on
    /// every CPU, whatever libm it has; each value is within a few ulps of double of the exact Box–Muller
    /// transform. ``fill(_:seed:firstExample:rows:count:stream:distribution:)`` draws whole rows of the same
    /// values, vectorised.
    @inline(__always)
    public static func normals(seed: UInt64, example: UInt64, sample: UInt32, block: UInt32) -> (Double, Double) {
        var z = (0.0, 0.0)
        withUnsafeMutableBytes(of: &z) {
            swiftattr_normal_pair(seed, example, sample, block, $0.baseAddress!.assumingMemoryBound(to: Double.self))
        }
        return z
    }

    /// A uniform index in 0..<n from a uniform `u` on [0, 1).
    @inline(__always)
    public static func index(_ u: Double, _ n: Int) -> Int { min(Int(u * Double(n)), n - 1) }
}
