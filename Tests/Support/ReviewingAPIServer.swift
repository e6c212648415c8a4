import Foundation
import PodstartCore
import Synchronization

/// An API server that answers TokenReviews and SubjectAccessReviews as a real one does (the
/// bodies of the Kubernetes API reference), with RBAC reduced to one rule: the `prometheus`
/// service account may `get` non-resource URLs under /v1.
public final class ReviewingAPIServer: Sendable {
    public init() {}

    public static let agentToken = "agent-service-account-token"
    public static let readerToken = "reader-token"
    public static let strangerToken = "stranger-token"
    public static let reader = "system:serviceaccount:monitoring:prometheus"

    public enum Mode { case answer, serverError, garbage }
    public let mode = Mutex(Mode.answer)
    public let reviews = Mutex<[(kind: String, spec: JSON)]>([])
    public let agentCredentials = Mutex<[String?]>([])

    public func handle(_ request: TestRequest) -> TestRoute {
        agentCredentials.withLock { $0.append(request.authorization) }
        switch mode.withLock({ $0 }) {
        case .serverError: return TestRoute(status: .internalServerError, chunks: [#"{"kind":"Status","status":"Failure","code":500}"#])
        case .garbage: return TestRoute(status: .created, chunks: ["<html>proxy error</html>"])
        case .answer: break
        }
        guard request.method == "POST", let review = try? JSON.parse(request.body), let kind = review["kind"]?.stringValue,
              let spec = review["spec"] else {
            return TestRoute(status: .badRequest, chunks: [#"{"kind":"Status","code":400}"#])
        }
        reviews.withLock { $0.append((kind, spec)) }
        switch (request.uri, kind) {
        case ("/apis/authentication.k8s.io/v1/tokenreviews", "TokenReview"):
            let token = spec["token"]?.stringValue
            if token == Self.readerToken || token == Self.strangerToken {
                let name = token == Self.readerToken ? Self.reader : "system:serviceaccount:default:stranger"
                return TestRoute(status: .created, chunks: [#"""
                    {"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"token":"\#(token!)"},
                     "status":{"authenticated":true,"user":{"username":"\#(name)","uid":"4f1c2a3b-0000-4000-8000-00000000abcd",
                     "groups":["system:serviceaccounts","system:authenticated"],
                     "extra":{"authentication.kubernetes.io/pod-name":["prometheus-0"]}},"audiences":["https://kubernetes.default.svc"]}}
                    """#])
            }
            return TestRoute(status: .created, chunks: [#"""
                {"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{},
                 "status":{"user":{},"error":"[invalid bearer token, token lookup failed]"}}
                """#])
        case ("/apis/authorization.k8s.io/v1/subjectaccessreviews", "SubjectAccessReview"):
            let user = spec["user"]?.stringValue
            let path = spec["nonResourceAttributes"]?["path"]?.stringValue ?? ""
            let verb = spec["nonResourceAttributes"]?["verb"]?.stringValue
            let allowed = user == Self.reader && verb == "get" && (path == "/v1" || path.hasPrefix("/v1/"))
            return TestRoute(status: .created, chunks: [allowed
                ? #"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","status":{"allowed":true,"reason":"RBAC: allowed by ClusterRoleBinding \"podstart-api-readers\""}}"#
                : #"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","status":{"allowed":false}}"#])
        default:
            return TestRoute(status: .notFound, chunks: [#"{"kind":"Status","code":404}"#])
        }
    }

    public func count(_ kind: String) -> Int { reviews.withLock { $0.filter { $0.kind == kind }.count } }
}

