import ArgumentParser
import KBKernels
import XCTest
@testable import kbindex_bench

/// How `kbindex-bench search --kernels` chooses the scans it measures: a
/// wrong list would compare the wrong scans, or drop the baseline the batch ratios need.
/// Written for given CPUs, so they pass on any machine.
final class SearchBenchTests: XCTestCase {
    typealias V = SearchBench.KernelVariant
    let x86: [DotKernel] = [.scalar, .avx2, .avx512vnni, .avxvnni]

    func testBestIsTheActiveKernelOnly() throws {
        XCTAssertEqual(try SearchBench.kernelVariants("best", supported: x86, active: .avx512vnni), [V(kernel: .avx512vnni)])
    }

    func testAllIsTheBaselineThenEveryKernelButScalar() throws {
        XCTAssertEqual(try SearchBench.kernelVariants("all", supported: x86, active: .avx512vnni),
                       [V(kernel: .avx2, genericPath: true), V(kernel: .avx2), V(kernel: .avx512vnni), V(kernel: .avxvnni)])
        XCTAssertEqual(try SearchBench.kernelVariants("all", supported: [.scalar, .neon], active: .neon),
                       [V(kernel: .neon, genericPath: true), V(kernel: .neon)])
        // No SIMD kernel: scalar alone, and no baseline to compare against.
        XCTAssertEqual(try SearchBench.kernelVariants("all", supported: [.scalar], active: .scalar), [V(kernel: .scalar)])
    }

    func testListsKeepTheirOrderOnceEachWithBaselineSpellings() throws {
        XCTAssertEqual(try SearchBench.kernelVariants("avxvnni, AVX2,baseline,best,avx2,generic", supported: x86, active: .avx512vnni),
                       [V(kernel: .avxvnni), V(kernel: .avx2), V(kernel: .avx2, genericPath: true), V(kernel: .avx512vnni)])
        XCTAssertEqual(V(kernel: .avx2, genericPath: true).description, "avx2 generic")
    }

    func testUnknownUnsupportedAndEmptyNamesAreRefusedWithTheSupportedOnes() {
        for spec in ["avx3", "neon", "", " , ", "avx2,bogus"] {
            XCTAssertThrowsError(try SearchBench.kernelVariants(spec, supported: x86, active: .avx512vnni), spec) { error in
                XCTAssertTrue((error as? ValidationError)?.message.contains("avx2, avx512vnni, avxvnni") == true, "\(error)")
            }
        }
        XCTAssertThrowsError(try SearchBench.kernelVariants("baseline", supported: [.scalar], active: .scalar))
    }
}
