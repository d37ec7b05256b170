import CBLAS
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// What this build of the library runs on: its version, the BLAS it links and the kernel that BLAS chose
/// for this CPU, and the thread setting. Quote it with every benchmark figure: the speed of every method
/// is the speed of its GEMMs, and an OpenBLAS that does not know the CPU runs generic kernels at a
/// fraction of its speed.
public enum BuildInfo {
    /// The library's version.
    public static let version = "0.2.0"

    /// The BLAS this build links: `"scipy-openblas32"` (default) or `"system-openblas"`.
    public static var blas: String { String(cString: sa_blas_flavour()) }

    /// OpenBLAS's configuration string, e.g. `"OpenBLAS 0.3.34 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64"`.
    public static var blasConfig: String { openblas_get_config().map { String(cString: $0) } ?? "" }

    /// The OpenBLAS version (the second word of ``blasConfig``).
    public static var blasVersion: String {
        let words = blasConfig.split(separator: " ")
        return words.count > 1 ? String(words[1]) : "unknown"
    }

    /// The kernel family OpenBLAS runs on this CPU (e.g. `"SkylakeX"`, `"Haswell"`, `"Zen"`; `"Prescott"`
    /// when it does not know the CPU). `OPENBLAS_CORETYPE` in the environment forces one.
    public static var blasCore: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// OpenBLAS kernels that use neither AVX2 nor AVX-512 (lower case).
    static let genericCores: Set<String> = [
        "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron", "opteron_sse3", "barcelona",
        "bobcat", "katmai", "coppermine", "northwood", "banias", "athlon", "generic", "sandybridge", "bulldozer",
        "unknown",
    ]

    /// The instruction set the library's own hot loops (Winograd transforms, im2col/col2im, max-pooling) run:
    /// `"avx512f"`, `"avx2"` or `"default"` (baseline x86-64, or any other architecture), the widest this CPU
    /// supports unless `SWIFTATTR_ISA` in the environment caps it. Every choice gives the same bits.
    public static var kernels: String { String(cString: swiftattr_kernels_isa()) }

    /// The CPU's model name (`/proc/cpuinfo`), or the architecture when it names none.
    public static let cpuModel: String = cpuInfoField(["model name", "Model", "cpu model"]) ?? architecture

    /// Whether the CPU advertises AVX2 (x86-64 only).
    public static let cpuHasAVX2: Bool = cpuInfoField(["flags"])?.split(separator: " ").contains("avx2") ?? false

    /// True when the BLAS runs a kernel without AVX2 on a CPU that has AVX2: GEMMs then run at a third or
    /// less of the CPU's speed (an OpenBLAS older than the CPU, such as Debian 12's 0.3.21 on current Xeons).
    public static var blasKernelIsGeneric: Bool { cpuHasAVX2 && genericCores.contains(blasCore.lowercased()) }

    static var architecture: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "aarch64"
        #else
        return "unknown"
        #endif
    }

    /// Everything above as one JSON object (what `sa_build_info()` returns).
    public static var json: String {
        func quoted(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
                default: out.unicodeScalars.append(scalar)
                }
            }
            return out + "\""
        }
        let fields: [(String, String)] = [
            ("version", quoted(version)),
            ("abi", String(abiVersion)),
            ("blas", quoted(blas)),
            ("blas_version", quoted(blasVersion)),
            ("blas_core", quoted(blasCore)),
            ("blas_config", quoted(blasConfig)),
            ("blas_kernel_generic", blasKernelIsGeneric ? "true" : "false"),
            ("threads", String(Parallel.threadCount)),
            ("processors", String(Parallel.processorCount)),
            ("threads_env_ignored", Parallel.threadEnvironmentIgnored ? "true" : "false"),
            ("cpu", quoted(cpuModel)),
            ("cpu_avx2", cpuHasAVX2 ? "true" : "false"),
            ("arch", quoted(architecture)),
            ("kernels", quoted(kernels)),
        ]
        return "{" + fields.map { "\(quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// The C interface's version: `SA_VERSION` in swiftattr.h, raised by every incompatible change of a
    /// declaration or a struct layout (2: the RATE functions take `sa_rate_options`).
    public static let abiVersion = 3

    private static func cpuInfoField(_ names: [String]) -> String? {
        guard let file = fopen("/proc/cpuinfo", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0 {
            let text = String(cString: line!)
            guard let colon = text.firstIndex(of: ":") else { continue }
            let key = text[..<colon].trimmingCharacters()
            if names.contains(key) {
                return text[text.index(after: colon)...].trimmingCharacters()
            }
        }
        return nil
    }
}

private extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingWhitespace() }
}
