// swift-tools-version:5.9
import Foundation
import PackageDescription

/// swiftattr: attribution and interaction methods for trained neural networks.
///
/// Products:
/// - `swiftattr`: the dynamic library `libswiftattr.so` exporting the C interface of `CInclude/swiftattr.h`;
/// - `SwiftAttr`: the numerics as a plain Swift library.
///
/// BLAS: by default the OpenBLAS that numpy and scipy ship (PyPI `scipy-openblas32`), which
/// `scripts/setup.sh` copies into `.blas/lib` of this checkout; the library finds it there or beside
/// itself (rpath `$ORIGIN`, as the Python package bundles it). `SWIFTATTR_BLAS=system swift build` links
/// the distribution's libopenblas and liblapacke instead (Debian 12's 0.3.21 runs generic kernels on
/// current Intel CPUs: see README).
let optimise: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let systemBLAS = ProcessInfo.processInfo.environment["SWIFTATTR_BLAS"] == "system"
let blasLibDir = Context.packageDirectory + "/.blas/lib"
if !systemBLAS && !FileManager.default.fileExists(atPath: blasLibDir + "/libscipy_openblas.so") {
    fatalError("""
        swiftattr: \(blasLibDir)/libscipy_openblas.so is missing. Run `bash scripts/setup.sh` (or `make setup`) \
        first: it installs PyPI's scipy-openblas32 and copies its library there. To link the system's \
        OpenBLAS instead, build with SWIFTATTR_BLAS=system.
        """)
}

let blasC: [CSetting] = systemBLAS ? [.define("SA_SYSTEM_BLAS")] : []
let blasLink: [LinkerSetting] = systemBLAS
    ? [.linkedLibrary("openblas"), .linkedLibrary("lapacke")]
    : [.linkedLibrary("scipy_openblas"),
       .unsafeFlags(["-L" + blasLibDir, "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN", "-Xlinker", "-rpath", "-Xlinker", blasLibDir])]

let package = Package(
    name: "swiftattr",
    products: [
        .library(name: "swiftattr", type: .dynamic, targets: ["SwiftAttrC"]),
        .library(name: "SwiftAttr", targets: ["SwiftAttr"]),
    ],
    targets: [
        .target(name: "CBLAS", cSettings: blasC, linkerSettings: blasLink),
        // The hot non-GEMM loops (Winograd transforms, im2col/col2im, max-pooling), compiled per instruction
        // set and dispatched at run time (Sources/CKernels/include/swiftattr_kernels.h).
        .target(name: "CKernels"),
        .target(name: "SwiftAttr", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimise),
        // CInclude/swiftattr.h as a module: the C layer takes its structs (sa_rate_options) from the header.
        .systemLibrary(name: "CSwiftAttr", path: "Sources/CSwiftAttr"),
        .target(name: "SwiftAttrC", dependencies: ["SwiftAttr", "CSwiftAttr"], swiftSettings: optimise),
        .testTarget(name: "SwiftAttrTests", dependencies: ["SwiftAttr", "CKernels"]),
    ]
)
