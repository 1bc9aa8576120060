import XCTest
@testable import kbindex_bench

/// `machineDescription`'s reading of /proc/cpuinfo: RESULTS.md tables carry the CPU model and
/// the flags the scan kernels use, so a misread line would mislabel every result.
final class MachineDescriptionTests: XCTestCase {
    func testCPUModelAndFeaturesFromCpuinfo() {
        let intel = """
            processor\t: 0
            model name\t: Intel(R) Xeon(R) Platinum 8488C
            flags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx_vnni amx_bf16 amx_tile amx_int8
            processor\t: 1
            model name\t: Intel(R) Xeon(R) Platinum 8488C
            flags\t\t: fpu
            """
        XCTAssertEqual(cpuModel(cpuinfo: intel), "Intel(R) Xeon(R) Platinum 8488C")
        XCTAssertEqual(cpuFeatures(cpuinfo: intel), ["avx2", "avx512_vnni", "avx_vnni", "amx_int8"])
        let zen3 = "model name\t: AMD EPYC 7R13 Processor\nflags\t\t: sse4_2 avx avx2 fma\n"
        XCTAssertEqual(cpuFeatures(cpuinfo: zen3), ["avx2"])
        let arm = """
            processor\t: 0
            BogoMIPS\t: 243.75
            Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp sve i8mm bf16
            CPU implementer\t: 0x41
            CPU part\t: 0xd40
            """
        XCTAssertEqual(cpuModel(cpuinfo: arm), "CPU implementer 0x41 part 0xd40")
        XCTAssertEqual(cpuFeatures(cpuinfo: arm), ["asimddp", "i8mm"])
        XCTAssertEqual(cpuModel(cpuinfo: ""), "unknown")
        XCTAssertEqual(cpuFeatures(cpuinfo: ""), [])
    }
}
