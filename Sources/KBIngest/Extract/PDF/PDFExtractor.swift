import Foundation
import KBCore

/// PDF text through poppler's command-line tools, each run as a separate process under
/// `ExtractionLimits` (see `Subprocess`): poppler is GPL, and a PDF that crashes or hangs it
/// costs that one file.
///
/// One `pdftotext -bbox-layout` run gives the Info title and every page's blocks, lines and
/// words in reading order with their font sizes; when it succeeds, one `pdftohtml -xml` run on
/// the first page gives the outline (it prints the whole outline whatever pages it renders).
/// `PDFStructure` makes sections of them: pages are the unit (`ParsedDocument.unit` is
/// `.pages`, line numbers are page numbers).
///
/// The programs are found in PATH, or where the environment variables KBINDEX_PDFTOTEXT and
/// KBINDEX_PDFTOHTML say (a path, or a name looked up in PATH). Without pdftohtml the
/// headings come from font size alone.
///
/// Failures: a user password → `.encrypted`; no text on any page → `.noText`; a file poppler
/// cannot open → `.damaged` with its message; past the time limit → `.timedOut`; killed
/// (memory limit, crash) or another exit status → `.toolFailed`; no pdftotext →
/// `.toolMissing("pdftotext")`. A file poppler reads with complaints gives its text and one
/// warning.
enum PDFExtractor {
    /// Where the programs are.
    struct Tools {
        var pdftotext: String?
        var pdftohtml: String?

        /// From PATH and the environment (see the type's notes).
        static func fromEnvironment() -> Tools {
            let env = ProcessInfo.processInfo.environment
            return Tools(pdftotext: Subprocess.locate("pdftotext", override: env["KBINDEX_PDFTOTEXT"]),
                         pdftohtml: Subprocess.locate("pdftohtml", override: env["KBINDEX_PDFTOHTML"]))
        }
    }

    /// See the type's notes. `path` names the file (its last component is the title of last
    /// resort); `data` is not read again (poppler reads `location`).
    static func extract(data: Data, location: NativePath, path: String, limits: ExtractionLimits) -> Result<ParseResult, ExtractionError> {
        extract(location: location, path: path, limits: limits, tools: .fromEnvironment())
    }

    /// `extract` with the programs given (tests point them at fakes).
    static func extract(location: NativePath, path: String, limits: ExtractionLimits, tools: Tools) -> Result<ParseResult, ExtractionError> {
        guard let pdftotext = tools.pdftotext else { return .failure(.toolMissing("pdftotext")) }
        // A name starting with "-" would be read as an option.
        var file = location.bytes
        if file.first == UInt8(ascii: "-") { file = Array("./".utf8) + file }

        let maxOutput = outputCap(maxTextBytes: limits.maxTextBytes)
        let started = Date()
        let run = Subprocess.run(pdftotext, [Array("-bbox-layout".utf8), Array("-enc".utf8), Array("UTF-8".utf8), file, Array("-".utf8)],
                                 limits: Subprocess.Limits(time: limits.timeLimit, memory: limits.memoryLimit, maxOutput: maxOutput))
        let outcome: Subprocess.Outcome
        switch run {
        case .failure(.toolMissing): return .failure(.toolMissing("pdftotext"))
        case .failure(.failed(let detail)): return .failure(.toolFailed("pdftotext failed: \(detail)"))
        case .success(let o): outcome = o
        }
        var warnings: [String]
        switch check(outcome, limits: limits, maxOutput: maxOutput) {
        case .failure(let e): return .failure(e)
        case .success(let w): warnings = w
        }

        let layout = PDFLayout.parse(outcome.stdout)
        if layout.pages.isEmpty {
            return .failure(outcome.outputCut ? .toolFailed("pdftotext failed: its output for the first page is too large") : .damaged("no pages"))
        }
        if layout.pages.allSatisfy({ $0.blocks.isEmpty }) { return .failure(.noText) }
        if !layout.complete && !outcome.outputCut {
            warnings.append("pdftotext stopped after page \(layout.pages.count); the rest is missing")
        }

        var outline: PDFOutline?
        if let pdftohtml = tools.pdftohtml {
            // -i: no images; -stdout: nothing written to disk; one page is enough for the outline.
            // It gets what pdftotext left of the time limit (at least a second): one file costs
            // about its limit, not twice that.
            let left = max(1, limits.timeLimit - Date().timeIntervalSince(started))
            let limitsHTML = Subprocess.Limits(time: left, memory: limits.memoryLimit, maxOutput: 64 << 20)
            if case .success(let o) = Subprocess.run(pdftohtml, ["-xml", "-i", "-q", "-stdout", "-f", "1", "-l", "1"].map { Array($0.utf8) } + [file], limits: limitsHTML),
               o.termination == .exited(0) || o.outputCut {
                let parsed = PDFOutline.parse(o.stdout)
                if !parsed.items.isEmpty { outline = parsed }
            }
        }

        let fileName = (path as NSString).lastPathComponent
        let built = PDFStructure.build(layout: layout, outline: outline, fileName: fileName, maxTextBytes: limits.maxTextBytes)
        return .success(ParseResult(document: built.document, warnings: warnings + built.warnings))
    }

    /// pdftotext's standard output is about 25 times the text it holds: enough for
    /// `maxTextBytes` (the text itself is cut there later, at a paragraph), at least 1 MiB and
    /// at most 256 MiB (all of it is held in memory).
    static func outputCap(maxTextBytes: Int) -> Int {
        Int(min(max(Double(maxTextBytes) * 32, 1_048_576), Double(256 << 20)))
    }

    /// How pdftotext's run ended: the warnings to give with its text, or the failure. Output
    /// cut is checked before the exit status (the tool may have exited before the kill).
    static func check(_ outcome: Subprocess.Outcome, limits: ExtractionLimits, maxOutput: Int) -> Result<[String], ExtractionError> {
        var warnings: [String] = []
        switch outcome.termination {
        case .timedOut:
            return .failure(.timedOut(seconds: limits.timeLimit))
        case _ where outcome.outputCut:
            warnings.append("pdftotext printed more than \(byteSize(maxOutput)); the text is cut after the last whole page")
        case .signaled(let signal):
            if outcome.ranOutOfMemory { return .failure(.toolFailed("pdftotext failed: out of memory (limit \(byteSize(limits.memoryLimit)))")) }
            return .failure(.toolFailed("pdftotext failed: killed by signal \(signal)\(lastError(outcome).map { " (\($0))" } ?? "")"))
        case .exited(0):
            let errors = outcome.stderrLines.filter { $0.contains("Error") }
            if let first = errors.first {
                warnings.append("pdftotext reported \(errors.count == 1 ? "an error" : "\(errors.count) errors") (first: \(clean(first))); the text may be incomplete")
            }
        case .exited(let status):
            let lines = outcome.stderrLines
            if lines.contains(where: { $0.contains("Incorrect password") }) { return .failure(.encrypted) }
            if status == 3 { return .failure(.encrypted) }  // poppler: permission (copying) refused
            if outcome.ranOutOfMemory { return .failure(.toolFailed("pdftotext failed: out of memory (limit \(byteSize(limits.memoryLimit)))")) }
            if status == 1 {
                // Could not open: "Couldn't read xref table", "May not be a PDF file", I/O errors.
                return .failure(.damaged(lastError(outcome) ?? "poppler cannot open it"))
            }
            return .failure(.toolFailed("pdftotext failed: exit status \(status)\(lastError(outcome).map { " (\($0))" } ?? "")"))
        }
        return .success(warnings)
    }

    /// The last line of standard error that says "Error" (poppler's "Syntax Error: …",
    /// "I/O Error: …"), without its prefix; else the last line. One line, at most 200 characters.
    static func lastError(_ o: Subprocess.Outcome) -> String? {
        let lines = o.stderrLines
        guard let line = lines.last(where: { $0.contains("Error") }) ?? lines.last else { return nil }
        return clean(line)
    }

    private static func clean(_ line: String) -> String {
        var s = line
        if let r = s.range(of: "Error: ") ?? s.range(of: "Error (") , r.lowerBound < s.index(s.startIndex, offsetBy: min(20, s.count)) {
            s = String(s[r.upperBound...])
            if line[r].hasSuffix("(") , let close = s.firstIndex(of: ")") { s = String(s[s.index(after: close)...]).trimmingCharacters(in: CharacterSet(charactersIn: ": ")) }
        }
        s = String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        if s.count > 200 { s = String(s.prefix(199)) + "…" }
        guard let first = s.first else { return s }
        return first.lowercased() + s.dropFirst()
    }
}
