import Foundation
import XCTest
@testable import SwiftAttr

/// The numbers the C interface promises are the ones Swift uses: every `sa_status` of swiftattr.h is a
/// ``SwiftAttrError/Code`` with the same value and back, every `sa_layer_kind` a ``Layer/Kind`` (the model
/// file's codes), every method enum (projection, IG rule, SmoothGrad aggregation, DeepLIFT and max-pool
/// rules) its Swift enum, and `SA_VERSION` is ``BuildInfo/abiVersion`` (what `sa_version()` returns). The header
/// is read as text, found from this file's path, so a renumbering on either side fails here.
final class ABINumberingTests: XCTestCase {
    private struct Missing: Error {}

    /// CInclude/swiftattr.h, two directories above Tests/SwiftAttrTests.
    private func header() throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("CInclude/swiftattr.h")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The `NAME = value` entries of `typedef enum <name> { ... } <name>;`, comments removed.
    private func enumValues(_ name: String, in text: String) throws -> [String: Int] {
        guard let open = text.range(of: "typedef enum \(name) {"),
              let close = text.range(of: "} \(name);", range: open.upperBound..<text.endIndex) else {
            XCTFail("enum \(name) not found in swiftattr.h")
            throw Missing()
        }
        var body = String(text[open.upperBound..<close.lowerBound])
        while let start = body.range(of: "/*"), let end = body.range(of: "*/", range: start.upperBound..<body.endIndex) {
            body.removeSubrange(start.lowerBound..<end.upperBound)
        }
        var values: [String: Int] = [:]
        for entry in body.split(separator: ",") {
            let parts = entry.split(separator: "=").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            guard parts.count == 2, let value = Int(parts[1]) else {
                XCTFail("enum \(name): cannot read the entry '\(entry)' (every entry must have an explicit value)")
                continue
            }
            XCTAssertNil(values[parts[0]], "\(parts[0]) appears twice")
            values[parts[0]] = value
        }
        XCTAssertFalse(values.isEmpty, "enum \(name) has no entries")
        return values
    }

    /// The header's name of each status code (an exhaustive switch: a new code must be named here).
    private func headerName(_ code: SwiftAttrError.Code) -> String {
        switch code {
        case .nullPointer: "SA_ERR_NULL_POINTER"
        case .invalidArgument: "SA_ERR_INVALID_ARGUMENT"
        case .shapeMismatch: "SA_ERR_SHAPE"
        case .nonFinite: "SA_ERR_NON_FINITE"
        case .outOfRange: "SA_ERR_OUT_OF_RANGE"
        case .unknownEnum: "SA_ERR_UNKNOWN_ENUM"
        case .io: "SA_ERR_IO"
        case .format: "SA_ERR_FORMAT"
        case .numerical: "SA_ERR_NUMERICAL"
        case .bufferTooSmall: "SA_ERR_BUFFER_TOO_SMALL"
        case .frozen: "SA_ERR_FROZEN"
        case .outOfMemory: "SA_ERR_OUT_OF_MEMORY"
        case .cancelled: "SA_ERR_CANCELLED"
        case .internal: "SA_ERR_INTERNAL"
        }
    }

    /// The header's name of each layer kind (exhaustive, as above).
    private func headerName(_ kind: Layer.Kind) -> String {
        switch kind {
        case .dense: "SA_LAYER_DENSE"
        case .conv1d: "SA_LAYER_CONV1D"
        case .conv2d: "SA_LAYER_CONV2D"
        case .maxPool1d: "SA_LAYER_MAXPOOL1D"
        case .maxPool2d: "SA_LAYER_MAXPOOL2D"
        case .avgPool1d: "SA_LAYER_AVGPOOL1D"
        case .avgPool2d: "SA_LAYER_AVGPOOL2D"
        case .globalAvgPool: "SA_LAYER_GLOBAL_AVGPOOL"
        case .flatten: "SA_LAYER_FLATTEN"
        case .relu: "SA_LAYER_RELU"
        case .leakyReLU: "SA_LAYER_LEAKY_RELU"
        case .elu: "SA_LAYER_ELU"
        case .softplus: "SA_LAYER_SOFTPLUS"
        case .sigmoid: "SA_LAYER_SIGMOID"
        case .tanh: "SA_LAYER_TANH"
        case .softmax: "SA_LAYER_SOFTMAX"
        case .batchNorm: "SA_LAYER_BATCHNORM"
        case .dropout: "SA_LAYER_DROPOUT"
        case .add: "SA_LAYER_ADD"
        case .concat: "SA_LAYER_CONCAT"
        case .embedding: "SA_LAYER_EMBEDDING"
        case .lstm: "SA_LAYER_LSTM"
        case .reshape: "SA_LAYER_RESHAPE"
        }
    }

    func testStatusCodesMatchTheHeader() throws {
        var header = try enumValues("sa_status", in: try header())
        XCTAssertEqual(header.removeValue(forKey: "SA_OK"), 0, "SA_OK must be 0")
        // Every Code (enumerated through its raw values: C status codes are small negative numbers).
        var seen = Set<String>()
        for raw in Int32(-1000)...Int32(-1) {
            guard let code = SwiftAttrError.Code(rawValue: raw) else { continue }
            let name = headerName(code)
            XCTAssertEqual(header[name], Int(raw), "\(name): Swift \(raw), header \(header[name].map(String.init) ?? "missing")")
            seen.insert(name)
        }
        XCTAssertEqual(Set(header.keys), seen, "sa_status entries without a SwiftAttrError.Code (or the reverse)")
    }

    func testLayerKindsMatchTheHeader() throws {
        let header = try enumValues("sa_layer_kind", in: try header())
        for kind in Layer.Kind.allCases {
            let name = headerName(kind)
            XCTAssertEqual(header[name], Int(kind.rawValue),
                           "\(name): Swift \(kind.rawValue), header \(header[name].map(String.init) ?? "missing")")
        }
        XCTAssertEqual(Set(header.keys), Set(Layer.Kind.allCases.map(headerName)),
                       "sa_layer_kind entries without a Layer.Kind (or the reverse)")
    }

    /// Checks that the header's enum `name` holds exactly the cases of `E`, each under `headerName(case)`
    /// with its raw value.
    private func assertEnum<E: CaseIterable & RawRepresentable>(_ name: String, _: E.Type, _ headerName: (E) -> String,
                                                                 file: StaticString = #filePath, line: UInt = #line) throws
        where E.RawValue: BinaryInteger {
        let header = try enumValues(name, in: try header())
        let swift = Dictionary(uniqueKeysWithValues: E.allCases.map { (headerName($0), Int($0.rawValue)) })
        XCTAssertEqual(header, swift, "\(name): header vs Swift's \(E.self)", file: file, line: line)
    }

    func testMethodEnumsMatchTheHeader() throws {
        try assertEnum("sa_projection", EffectSizeProjection.self) {
            switch $0 {
            case .covariance: "SA_PROJECTION_COVARIANCE"
            case .pseudoinverse: "SA_PROJECTION_PSEUDOINVERSE"
            }
        }
        try assertEnum("sa_ig_method", PathQuadrature.self) {
            switch $0 {
            case .riemannLeft: "SA_IG_RIEMANN_LEFT"
            case .riemannRight: "SA_IG_RIEMANN_RIGHT"
            case .riemannMiddle: "SA_IG_RIEMANN_MIDDLE"
            case .riemannTrapezoid: "SA_IG_RIEMANN_TRAPEZOID"
            case .gaussLegendre: "SA_IG_GAUSS_LEGENDRE"
            }
        }
        try assertEnum("sa_nt_type", Network.NoiseAggregation.self) {
            switch $0 {
            case .smoothGrad: "SA_NT_SMOOTHGRAD"
            case .smoothGradSquared: "SA_NT_SMOOTHGRAD_SQ"
            case .varGrad: "SA_NT_VARGRAD"
            }
        }
        try assertEnum("sa_deeplift_rule", DeepLiftRule.self) {
            switch $0 {
            case .rescale: "SA_DEEPLIFT_RESCALE"
            case .revealCancel: "SA_DEEPLIFT_REVEALCANCEL"
            case .genomics: "SA_DEEPLIFT_GENOMICS"
            }
        }
        try assertEnum("sa_maxpool_rule", MaxPoolRule.self) {
            switch $0 {
            case .gradient: "SA_MAXPOOL_GRADIENT"
            case .crossMax: "SA_MAXPOOL_CROSSMAX"
            }
        }
        try assertEnum("sa_acd_score_rule", ACDScoreRule.self) {
            switch $0 {
            case .automatic: "SA_ACD_SCORE_AUTO"
            case .target: "SA_ACD_SCORE_TARGET"
            case .targetMinusOther: "SA_ACD_SCORE_TARGET_MINUS_OTHER"
            }
        }
    }

    func testVersionMatchesTheHeader() throws {
        let text = try header()
        let line = text.split(separator: "\n").first { $0.hasPrefix("#define SA_VERSION ") }
        let value = line.flatMap { Int($0.dropFirst("#define SA_VERSION ".count).trimmingCharacters(in: .whitespaces)) }
        XCTAssertEqual(value, BuildInfo.abiVersion, "SA_VERSION in swiftattr.h vs BuildInfo.abiVersion (sa_version())")
    }
}
