// swift-tools-version:5.9
import PackageDescription

/// swiftattr: attribution and interaction methods for trained neural networks.
///
/// Products:
/// - `swiftattr`: the dynamic library `libswiftattr.so` exporting the C interface of `CInclude/swiftattr.h`;
/// - `SwiftAttr`: the numerics as a plain Swift library.
let optimise: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "swiftattr",
    products: [
        .library(name: "swiftattr", type: .dynamic, targets: ["SwiftAttrC"]),
        .library(name: "SwiftAttr", targets: ["SwiftAttr"]),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .target(name: "SwiftAttr", dependencies: ["CBLAS"], swiftSettings: optimise),
        .target(name: "SwiftAttrC", dependencies: ["SwiftAttr"], swiftSettings: optimise),
        .testTarget(name: "SwiftAttrTests", dependencies: ["SwiftAttr"]),
    ]
)
