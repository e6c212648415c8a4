/// An image reference as a pod spec or `docker pull` writes it: `[registry/]repository[:tag][@digest]`.
/// Docker Hub names are normalised as the docker CLI does (`busybox` → `docker.io/library/busybox`).
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// `host[:port]` as written (`docker.io` for Docker Hub).
    public var registry: String
    public var repository: String
    public var tag: String?
    /// `sha256:<64 hex>` when the reference pins one.
    public var digest: String?

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var reference: String
        public var reason: String
        public var description: String {
            "not an image reference: \"\(reference)\": \(reason) (expected [registry/]repository[:tag][@sha256:…])"
        }
    }

    public init(registry: String, repository: String, tag: String? = nil, digest: String? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    public init(parsing text: String) throws {
        func fail(_ why: String) -> ParseError { ParseError(reference: text, reason: why) }
        guard !text.isEmpty, !text.contains(where: { $0.isWhitespace }) else { throw fail("empty or contains spaces") }
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            guard ImageDigest.isValid(d) else { throw fail("the digest must be sha256: and 64 lowercase hex digits") }
            digest = d
            rest = rest[..<at]
        }
        // A registry host is the first component when it has a dot or a port, or is localhost.
        let components = rest.split(separator: "/", omittingEmptySubsequences: false)
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" {
            registry = String(first)
            rest = rest[rest.index(rest.startIndex, offsetBy: first.count + 1)...]
        } else {
            registry = "docker.io"
        }
        if let colon = rest.lastIndex(of: ":") {
            let t = String(rest[rest.index(after: colon)...])
            guard !t.isEmpty, t.count <= 128, t.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }),
                  t.first != "." && t.first != "-" else { throw fail("bad tag \"\(t)\"") }
            tag = t
            rest = rest[..<colon]
        }
        var repo = String(rest)
        guard !repo.isEmpty else { throw fail("no repository") }
        guard repo.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || "._-/".contains($0) }),
              !repo.hasPrefix("/"), !repo.hasSuffix("/"), !repo.contains("//") else {
            throw fail("repository names are lowercase letters, digits and . _ - / separators")
        }
        if registry == "docker.io", !repo.contains("/") { repo = "library/" + repo }
        repository = repo
    }

    /// What the manifests endpoint takes: the digest when pinned, else the tag (`latest` by default).
    public var reference: String { digest ?? tag ?? "latest" }

    /// The host the distribution API is served from (Docker Hub's API lives on registry-1).
    public var apiHost: String { registry == "docker.io" ? "registry-1.docker.io" : registry }

    public var description: String {
        var s = "\(registry)/\(repository)"
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    /// The digest a reference or repo digest pins (`name@sha256:…` → `sha256:…`), without
    /// parsing the rest: runtimes hand out image ids and repo digests that are no pod-spec
    /// reference. Nil when `text` pins none.
    public static func digest(in text: String) -> String? {
        guard let at = text.lastIndex(of: "@") else { return nil }
        let digest = text[text.index(after: at)...]
        return digest.isEmpty ? nil : String(digest)
    }

    /// A reference whose digest part, if any, is dropped unchecked: the runtime's repo digests
    /// (`repo@sha256:…`) and tags of one repository then compare by ``repositoryAndTag``. Nil
    /// when the rest is no reference.
    public init?(ignoringDigest text: String) {
        let name = text.lastIndex(of: "@").map { String(text[..<$0]) } ?? text
        guard let parsed = try? ImageReference(parsing: name) else { return nil }
        self = parsed
    }

    /// `repository:tag` without the registry (`busybox` → `library/busybox:latest`): the same
    /// repository and tag pulled through another host (a mirror or proxy) compares equal.
    public var repositoryAndTag: String { "\(repository):\(tag ?? "latest")" }

    /// Whether `text` is an image id (`sha256:<hex>`, or 64 bare hex digits) rather than a
    /// reference: what the kubelet creates containers with, and what a runtime's record then names.
    public static func isImageID(_ text: String) -> Bool {
        text.hasPrefix("sha256:") || ImageDigest.isValid("sha256:" + text)
    }

    /// The one spelling of `text` that compares equal to every other spelling of the same image
    /// (`nginx`, `nginx:latest`, `docker.io/library/nginx:latest`): a pull logged as the pod spec
    /// wrote it and the container the runtime created from it name the same image. Text that is
    /// no reference (an image id) is returned as it is.
    public static func canonical(_ text: String) -> String {
        guard !text.hasPrefix("sha256:"), var reference = try? ImageReference(parsing: text) else { return text }
        if reference.tag == nil, reference.digest == nil { reference.tag = "latest" }
        return reference.description
    }
}
