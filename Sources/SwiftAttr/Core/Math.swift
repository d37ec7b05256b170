#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Thin names for libm, so numerical files need not import Glibc themselves.
@inline(__always) func _exp(_ x: Float) -> Float { expf(x) }
@inline(__always) func _exp(_ x: Double) -> Double { exp(x) }
@inline(__always) func _log(_ x: Double) -> Double { log(x) }
@inline(__always) func _log(_ x: Float) -> Float { logf(x) }
@inline(__always) func _log1p(_ x: Float) -> Float { log1pf(x) }
@inline(__always) func _log1p(_ x: Double) -> Double { log1p(x) }
@inline(__always) func _expm1(_ x: Float) -> Float { expm1f(x) }
@inline(__always) func _tanh(_ x: Float) -> Float { tanhf(x) }
@inline(__always) func _cos(_ x: Double) -> Double { cos(x) }
@inline(__always) func _sqrt(_ x: Double) -> Double { x.squareRoot() }
