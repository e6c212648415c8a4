import Foundation
import PodstartCore

/// One layer of an image, as its manifest lists it.
public struct ImageLayer: Sendable, Hashable {
    /// Digest of the layer blob as stored in the registry (`sha256:…`, usually of the gzip stream).
    public var digest: String
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    public var diffID: String?
    public var sizeBytes: Int64
    public var mediaType: String
}

/// An image's manifest, config and layers (bottom layer first), read from containerd's content
/// store (`<root>/io.containerd.content.v1.content/blobs/sha256/<hex>`, docs/inputs.md#containerd-on-disk-layout).
public struct ImageLayers: Sendable, Hashable {
    public var manifestDigest: String
    public var configDigest: String
    public var layers: [ImageLayer]

    public enum LoadError: Error, CustomStringConvertible {
        case blobMissing(path: String)
        case malformed(digest: String, detail: String)
        case noManifestForPlatform(index: String, platform: String)

        public var description: String {
            switch self {
            case .blobMissing(let path): "content blob \(path) not found (image removed or other containerd root?)"
            case .malformed(let digest, let detail): "content blob \(digest) is not a usable manifest: \(detail)"
            case .noManifestForPlatform(let index, let platform): "index \(index) has no manifest for \(platform)"
            }
        }
    }

    /// Loads the layers of the image whose manifest (or index) has digest `digest`.
    public static func load(contentStoreRoot root: String, digest: String,
                            os: String = "linux", architecture: String = hostArchitecture) throws -> ImageLayers {
        try read(digest: digest, os: os, architecture: architecture) { try blobJSON(root, $0) }
    }

    /// The layers of the image whose manifest (or index) has digest `digest`, each document
    /// (index, manifest, config) obtained from `blob` by its digest. A missing config is no
    /// error (the layers come without diff IDs); anything else malformed is.
    public static func read(digest: String, os: String = "linux", architecture: String = hostArchitecture,
                            blob: (String) throws -> JSON) throws -> ImageLayers {
        var manifestDigest = digest
        var manifest = try blob(digest)
        if let manifests = manifest["manifests"]?.arrayValue, manifests.allSatisfy({ $0.objectValue != nil }) {
            let chosen = manifests.first {
                let platform = $0["platform"]
                return platform?["os"]?.stringValue == os && platform?["architecture"]?.stringValue == architecture
            } ?? (manifests.count == 1 ? manifests[0] : nil)
            guard let chosen, let next = chosen["digest"]?.stringValue else {
                throw LoadError.noManifestForPlatform(index: digest, platform: "\(os)/\(architecture)")
            }
            manifestDigest = next
            manifest = try blob(next)
        }
        guard let layerEntries = manifest["layers"]?.arrayValue, layerEntries.allSatisfy({ $0.objectValue != nil }),
              let configDigest = manifest["config"]?["digest"]?.stringValue else {
            throw LoadError.malformed(digest: manifestDigest, detail: "no layers or config")
        }
        let configJSON = try? blob(configDigest)
        let diffIDEntries = configJSON?["rootfs"]?["diff_ids"]?.arrayValue?.map(\.stringValue) ?? []
        let diffIDs = diffIDEntries.contains(nil) ? [] : diffIDEntries.compactMap { $0 }
        let layers = layerEntries.enumerated().map { index, entry in
            ImageLayer(digest: entry["digest"]?.stringValue ?? "",
                       diffID: index < diffIDs.count ? diffIDs[index] : nil,
                       sizeBytes: entry["size"]?.int64Value ?? 0,
                       mediaType: entry["mediaType"]?.stringValue ?? "")
        }
        return ImageLayers(manifestDigest: manifestDigest, configDigest: configDigest, layers: layers)
    }

    public static var hostArchitecture: String {
        #if arch(x86_64)
        "amd64"
        #elseif arch(arm64)
        "arm64"
        #else
        "unknown"
        #endif
    }

    static func blobPath(_ root: String, _ digest: String) -> String {
        let parts = digest.split(separator: ":", maxSplits: 1)
        let algorithm = parts.count == 2 ? String(parts[0]) : "sha256"
        let hex = parts.count == 2 ? String(parts[1]) : digest
        return "\(root)/io.containerd.content.v1.content/blobs/\(algorithm)/\(hex)"
    }

    private static func blobJSON(_ root: String, _ digest: String) throws -> JSON {
        let path = blobPath(root, digest)
        guard let data = FileManager.default.contents(atPath: path) else { throw LoadError.blobMissing(path: path) }
        let object: JSON
        do { object = try JSON.parse(Array(data)) } catch {
            throw LoadError.malformed(digest: digest, detail: "not JSON (\(error))")
        }
        guard object.objectValue != nil else { throw LoadError.malformed(digest: digest, detail: "not a JSON object") }
        return object
    }
}

/// Which layer a file of a container's root filesystem comes from.
public enum LayerAttribution: Sendable, Hashable {
    /// An image layer.
    case layer(ImageLayer)
    /// Created or copied up by the container (its writable layer).
    case container
    /// No layer has it (deleted, or outside the root filesystem such as /proc).
    case none
}

extension OverlayRootfs {
    /// containerd's root directory, from the overlayfs snapshot paths
    /// (`<root>/io.containerd.snapshotter.v1.overlayfs/snapshots/<N>/fs`).
    public var containerdRoot: String? {
        let marker = "/io.containerd.snapshotter.v1.overlayfs/"
        guard let any = lowerDirs.first ?? upperDir, let range = any.range(of: marker) else { return nil }
        return String(any[..<range.lowerBound])
    }

    /// The layer that provides `path`. overlayfs stacks one lowerdir per image layer, topmost
    /// first, so lowerdir i is manifest layer (count − 1 − i); nil when the counts differ.
    public func attribution(of path: String, layers: ImageLayers) -> LayerAttribution? {
        guard layers.layers.count == lowerDirs.count else { return nil }
        switch layerIndex(providing: path) {
        case .upper: return .container
        case .lower(let index): return .layer(layers.layers[layers.layers.count - 1 - index])
        case nil: return LayerAttribution.none
        }
    }

    /// Where `path` comes from, for an access of `file`: the layer that provides it (nil when the
    /// image's layers are unknown, or for the container's own files) and the file holding its
    /// bytes — page-cache reads name the providing layer's file, not the overlay inode.
    public func location(of path: String, file: FileIdentity, layers: ImageLayers?) -> LayerLocation {
        let dataFile = dataFile(of: path) ?? file.dataKey
        guard let layers, case .layer(let layer)? = attribution(of: path, layers: layers) else {
            return LayerLocation(layerDigest: nil, dataFile: dataFile)
        }
        return LayerLocation(layerDigest: layer.digest, dataFile: dataFile)
    }

    /// The layers of the image `digest` names, from containerd's content store under this
    /// root filesystem's containerd root, else under `runtimeRoot` (the root the runtime reports,
    /// `RuntimeLayout.containerdRoot`): a proxy snapshotter's layers (stargz) live under the
    /// snapshotter's own directory, which does not lead to containerd's. nil when both are
    /// unknown or the image's documents are unreadable.
    public func imageLayers(digest: String?, runtimeRoot: String? = nil) -> ImageLayers? {
        guard let digest, let root = containerdRoot ?? runtimeRoot else { return nil }
        return try? ImageLayers.load(contentStoreRoot: root, digest: digest)
    }
}
