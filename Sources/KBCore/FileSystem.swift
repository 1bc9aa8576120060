// Every syscall kbindex makes on files lives in this file: mapping, atomic replacement,
// fsync. The rest of the code sees only the safe types below.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An error from the file layer, naming the path and what the system said.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let operation: String
    public let code: Int32

    public init(path: String, operation: String, code: Int32 = errno) {
        self.path = path
        self.operation = operation
        self.code = code
    }

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(code)))"
    }

    /// The operation and the system's reason without the path ("cannot open: Permission
    /// denied"), for a message that already names the file.
    public var reason: String { "\(operation): \(String(cString: strerror(code)))" }

    /// Whether the file did not exist (ENOENT), e.g. removed by a compaction after the
    /// manifest that named it was read.
    public var isMissingFile: Bool { code == ENOENT }
}

/// Crash points for the fault-injection tests: when the environment variable
/// `KBINDEX_FAULT` equals a point's name, the process kills itself there with SIGKILL, as a
/// power cut or `kill -9` would. Unset (always, for users), each point is one comparison.
public enum FaultInjection {
    private static let armed: String? = ProcessInfo.processInfo.environment["KBINDEX_FAULT"]

    /// Dies with SIGKILL if `KBINDEX_FAULT` is `name`.
    public static func point(_ name: String) {
        if let armed, armed == name { kill(getpid(), SIGKILL) }
    }
}

/// A read-only memory mapping of a whole file.
///
/// The bytes stay valid as long as the `MappedFile` lives; the mapping is released on
/// deinit. An empty file maps to an empty buffer. Sharing across threads is safe because
/// the mapping is never written.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened from.
    public let path: String
    /// The mapped bytes (read-only).
    public let bytes: UnsafeRawBufferPointer

    /// Maps `path` read-only. Throws `FileError` when the file cannot be opened or mapped.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, operation: "cannot open") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError(path: path, operation: "cannot stat") }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FileError(path: path, operation: "not a regular file:", code: EINVAL)
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw FileError(path: path, operation: "cannot map") }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit {
        if let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}

/// Atomic, durable file replacement: write to `<path>.tmp-<pid>`, fsync, rename over
/// `path`, fsync the folder. A reader sees the old file or the new one, never a mix,
/// and a crash leaves at worst a stray temporary file.
public enum AtomicFile {
    /// Writes `data` to `path` atomically. Creates no folders.
    public static func write(_ data: Data, to path: String) throws {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: tmp, operation: "cannot create") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        try data.withUnsafeBytes { raw in
            if let base = raw.baseAddress { try writeAll(fd, base, raw.count, path: tmp) }
        }
        try syncAndClose(fd, path: tmp)
        FaultInjection.point("before-rename:" + (path as NSString).lastPathComponent)
        try rename(tmp, over: path)
        ok = true
    }

    /// Renames `from` over `to` (both in one folder, or at least on one file system),
    /// then fsyncs the destination's folder so the rename itself is durable.
    public static func rename(_ from: String, over to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw FileError(path: to, operation: "cannot rename \(from) to") }
        syncDirectory(containing: to)
    }

    /// Flushes a file's data to disk. Throws when the file cannot be opened or synced.
    public static func sync(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, operation: "cannot open") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileError(path: path, operation: "cannot fsync") }
    }

    /// Makes `to` a hard link to `from` (`link(2)`): the same immutable bytes under a second
    /// name, at no cost in space or time. Returns false, creating nothing, when the two are
    /// on different file systems or the file system has no hard links (EXDEV, EPERM,
    /// ENOTSUP, EMLINK, EOPNOTSUPP): then copy. Throws `FileError` for other failures (`to`
    /// exists, a missing folder). The caller syncs the folder. Only for files never written
    /// again (a later change to one name would show under the other).
    public static func link(_ from: String, to: String) throws -> Bool {
        if Glibc.link(from, to) == 0 { return true }
        let e = errno
        if [EXDEV, EPERM, ENOTSUP, EMLINK, EOPNOTSUPP].contains(e) { return false }
        throw FileError(path: to, operation: "cannot link \(from) to", code: e)
    }

    /// Copies `from` to `to` atomically and durably, as `write(_:to:)` writes: streamed
    /// through `to.tmp-<pid>` in 1 MiB blocks (memory stays flat whatever the size), fsynced,
    /// renamed over `to`. Returns the bytes copied. Throws `FileError`; nothing is left at
    /// `to` then. O(file size).
    @discardableResult
    public static func copy(_ from: String, to: String) throws -> Int {
        let src = open(from, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw FileError(path: from, operation: "cannot open") }
        defer { close(src) }
        let tmp = "\(to).tmp-\(getpid())"
        let dst = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard dst >= 0 else { throw FileError(path: tmp, operation: "cannot create") }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        var total = 0
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = Glibc.read(src, buffer, size)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(dst)
                throw FileError(path: from, operation: "cannot read", code: e)
            }
            if n == 0 { break }
            try writeAll(dst, buffer, n, path: tmp)
            total += n
        }
        try syncAndClose(dst, path: tmp)
        try rename(tmp, over: to)
        ok = true
        return total
    }

    /// Writes `count` bytes from `p` to `fd` (retrying short writes and EINTR); on failure
    /// closes `fd` and throws `FileError` naming `path`.
    private static func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ count: Int, path: String) throws {
        var done = 0
        while done < count {
            let n = Glibc.write(fd, p + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                throw FileError(path: path, operation: "cannot write", code: e)
            }
            done += n
        }
    }

    /// fsyncs and closes `fd`; on a failed fsync closes it and throws `FileError` naming `path`.
    private static func syncAndClose(_ fd: Int32, path: String) throws {
        guard fsync(fd) == 0 else {
            let e = errno
            close(fd)
            throw FileError(path: path, operation: "cannot fsync", code: e)
        }
        close(fd)
    }

    /// Best effort: fsync the folder that holds `path` (some file systems refuse; that is fine).
    public static func syncDirectory(containing path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }
}

// MARK: - Walking folders: stat, directory listing, bounded reads

/// A file-system path as the bytes the system uses. Linux names are bytes, not text: a name
/// need not be valid UTF-8 (a file copied from an old Latin-1 disk, say), and a `String`
/// would replace such bytes with U+FFFD and name a file that does not exist. The walk keeps
/// paths in this form and opens files by their bytes.
public struct NativePath: Hashable, Sendable, CustomStringConvertible {
    /// The path's bytes, without a terminating NUL (a NUL inside cannot name a file).
    public let bytes: [UInt8]

    /// The path `string` spells (its UTF-8 bytes).
    public init(_ string: String) { bytes = Array(string.utf8) }

    /// The path made of `bytes`, as `readdir` or `realpath` returned them.
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// `self` + "/" + `name`. O(length).
    public func appending(_ name: [UInt8]) -> NativePath {
        var b = bytes
        if b.last != UInt8(ascii: "/") { b.append(UInt8(ascii: "/")) }
        b.append(contentsOf: name)
        return NativePath(bytes: b)
    }

    /// The path as text: the bytes decoded as UTF-8, invalid sequences replaced with U+FFFD
    /// (lossy: two names that differ only in invalid bytes read the same).
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// Whether the bytes are valid UTF-8 (then `description` is exact).
    public var isValidUTF8: Bool { String(validating: bytes, as: UTF8.self) != nil }

    /// Calls `body` with the path as a NUL-terminated C string.
    public func withCString<R>(_ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try (bytes + [0]).withUnsafeBufferPointer { buf in
            try buf.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    /// The absolute path with every symbolic link, "." and ".." resolved (`realpath(3)`).
    /// Throws `FileError` when a component is missing or a link loops.
    public func resolved() throws -> NativePath {
        guard let p = withCString({ realpath($0, nil) }) else { throw FileError(path: description, operation: "cannot resolve") }
        defer { free(p) }
        return NativePath(bytes: Array(UnsafeRawBufferPointer(start: p, count: strlen(p))))
    }

    /// Whether `self` is `folder` or lies inside it, comparing whole components ("/a/bc" is
    /// not inside "/a/b"). Both should be resolved (`resolved()`) for the answer to mean
    /// anything. O(length).
    public func isInside(_ folder: NativePath) -> Bool {
        var f = folder.bytes
        while f.count > 1 && f.last == UInt8(ascii: "/") { f.removeLast() }
        guard bytes.starts(with: f) else { return false }
        if bytes.count == f.count || f == [UInt8(ascii: "/")] { return true }
        return bytes[f.count] == UInt8(ascii: "/")
    }
}

/// What `FileStatus` found at a path: the fields a folder walk needs.
public struct FileStatus: Sendable, Equatable {
    /// The kind of file system object.
    public enum Kind: Sendable, Equatable { case regular, directory, symbolicLink, other }
    public let kind: Kind
    /// Size in bytes (of the link itself for a symbolic link seen through `lstat`).
    public let size: Int
    /// Last modification time, nanoseconds since the Unix epoch.
    public let mtimeNanoseconds: Int64
    /// Device and inode: together they name the object (used to detect symbolic-link loops).
    public let device: UInt64
    public let inode: UInt64

    init(_ st: stat) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symbolicLink
        default: kind = .other
        }
        size = Int(st.st_size)
        #if canImport(Darwin)
        mtimeNanoseconds = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #else
        mtimeNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #endif
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }

    /// `stat(2)`: follows symbolic links. Throws `FileError` (e.g. a dangling link, permission denied).
    public static func of(_ path: String) throws -> FileStatus { try of(NativePath(path)) }

    /// `stat(2)` on a path given as bytes.
    public static func of(_ path: NativePath) throws -> FileStatus {
        var st = stat()
        guard path.withCString({ stat($0, &st) }) == 0 else { throw FileError(path: path.description, operation: "cannot stat") }
        return FileStatus(st)
    }

    /// `lstat(2)`: describes a symbolic link itself rather than its target.
    public static func ofLink(_ path: String) throws -> FileStatus { try ofLink(NativePath(path)) }

    /// `lstat(2)` on a path given as bytes.
    public static func ofLink(_ path: NativePath) throws -> FileStatus {
        var st = stat()
        guard path.withCString({ lstat($0, &st) }) == 0 else { throw FileError(path: path.description, operation: "cannot lstat") }
        return FileStatus(st)
    }
}

/// Folder listing through `opendir`/`readdir`, with the system's error when it fails.
public enum DirectoryListing {
    /// The names in folder `path` (without "." and ".."), sorted bytewise so walks are
    /// deterministic. Throws `FileError` when the folder cannot be opened (e.g. EACCES, ENOTDIR).
    /// A name that is not valid UTF-8 comes back with U+FFFD in place of its bad bytes: such
    /// a name cannot be opened; walks use `entries(in:)`.
    public static func names(in path: String) throws -> [String] {
        try entries(in: NativePath(path)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The names in folder `path` as the bytes the system returned (without "." and ".."),
    /// sorted bytewise. Throws `FileError` when the folder cannot be opened or read. O(entries).
    public static func entries(in path: NativePath) throws -> [[UInt8]] {
        guard let dir = path.withCString({ opendir($0) }) else { throw FileError(path: path.description, operation: "cannot list") }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        errno = 0
        while let entry = readdir(dir) {
            let name: [UInt8] = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: UInt8.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) { p in
                    Array(UnsafeBufferPointer(start: p, count: strlen(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self))))
                }
            }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
        }
        if errno != 0 { throw FileError(path: path.description, operation: "cannot list") }
        return names.sorted { $0.lexicographicallyPrecedes($1) }
    }
}

/// Bounded reads with the system's error when they fail (unlike `Data(contentsOf:)`).
public enum FileReader {
    /// Reads at most `limit` bytes from the start of the file at `path` (the whole file when nil).
    public static func read(_ path: String, limit: Int? = nil) throws -> Data { try read(NativePath(path), limit: limit) }

    /// Reads at most `limit` bytes from the start of the file at `path`, given as bytes.
    public static func read(_ path: NativePath, limit: Int? = nil) throws -> Data {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw FileError(path: path.description, operation: "cannot open") }
        defer { close(fd) }
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while limit.map({ out.count < $0 }) ?? true {
            let want = min(buffer.count, (limit ?? Int.max) - out.count)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path.description, operation: "cannot read")
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }

    /// Whether the current process may read `path` (`access(2)` with R_OK; root passes everywhere).
    public static func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }
}

// MARK: - Advisory locks

/// An exclusive advisory lock on a file (`flock(2)`), held until `unlock()` or deinit. The
/// kernel drops it when the process dies, so a killed holder never leaves a stale lock.
public final class FileLock {
    private var fd: Int32

    /// Takes the lock on `path` (created if missing) without waiting; nil when another
    /// process holds it. Throws `FileError` when the file cannot be opened.
    public static func tryLock(_ path: String) throws -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, operation: "cannot open") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return FileLock(fd: fd)
    }

    private init(fd: Int32) { self.fd = fd }

    /// Releases the lock (idempotent).
    public func unlock() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { unlock() }
}
