import KBHTTP
@testable import KBObjectStore
import XCTest

final class S3ConfigurationTests: XCTestCase {
    func testLocationParsing() throws {
        let a = try S3Location(parsing: "s3://my-bucket/some/prefix/")
        XCTAssertEqual(a.bucket, "my-bucket")
        XCTAssertEqual(a.prefix, "some/prefix")
        XCTAssertEqual(a.description, "s3://my-bucket/some/prefix")
        XCTAssertEqual(a.objectKey("manifest.json"), "some/prefix/manifest.json")
        let b = try S3Location(parsing: "s3://bucket.with.dots")
        XCTAssertEqual(b.prefix, "")
        XCTAssertEqual(b.description, "s3://bucket.with.dots")
        XCTAssertEqual(b.objectKey("k"), "k")
        for bad in ["", "bucket/prefix", "http://bucket/x", "s3://", "s3:///prefix", "s3://B", "s3://Upper-Case/x",
                    "s3://-dash/x", "s3://bucket/a//b", "s3://bucket/a/../b", "s3://bucket_underscore/x"] {
            XCTAssertThrowsError(try S3Location(parsing: bad), bad) { error in
                guard case let .invalidLocation(message)? = error as? ObjectStoreError else { return XCTFail("\(bad): \(error)") }
                XCTAssertTrue(message.contains("s3://bucket/some/prefix"), message)
            }
        }
    }

    func testFromEnvironment() throws {
        let base = ["AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret/+key"]
        let c = try S3Configuration.fromEnvironment(base)
        XCTAssertEqual(c.accessKey, "AKIAEXAMPLE")
        XCTAssertEqual(c.secretKey, "secret/+key")
        XCTAssertNil(c.sessionToken)
        XCTAssertEqual(c.region, "us-east-1")
        XCTAssertNil(c.endpoint)
        XCTAssertFalse(c.pathStyle)
        XCTAssertEqual(c.partSize, 32 << 20)
        XCTAssertEqual(c.multipartThreshold, 64 << 20)

        var env = base
        env["AWS_DEFAULT_REGION"] = "eu-west-1"
        XCTAssertEqual(try S3Configuration.fromEnvironment(env).region, "eu-west-1")
        env["AWS_REGION"] = "eu-central-1"
        XCTAssertEqual(try S3Configuration.fromEnvironment(env).region, "eu-central-1")
        env["AWS_SESSION_TOKEN"] = "token"
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000"
        let d = try S3Configuration.fromEnvironment(env)
        XCTAssertEqual(d.sessionToken, "token")
        XCTAssertEqual(d.endpoint?.absoluteString, "http://127.0.0.1:9000")
        XCTAssertTrue(d.pathStyle)
        env["AWS_ENDPOINT_URL_S3"] = "https://s3.example.org"
        XCTAssertEqual(try S3Configuration.fromEnvironment(env).endpoint?.absoluteString, "https://s3.example.org")
        env["AWS_ENDPOINT_URL_S3"] = "ftp://nope"
        XCTAssertThrowsError(try S3Configuration.fromEnvironment(env)) { error in
            guard case .invalidLocation? = error as? ObjectStoreError else { return XCTFail("\(error)") }
        }

        for (env, names) in [([String: String](), "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
                             (["AWS_ACCESS_KEY_ID": "a"], "AWS_SECRET_ACCESS_KEY"),
                             (["AWS_SECRET_ACCESS_KEY": "s", "AWS_ACCESS_KEY_ID": ""], "AWS_ACCESS_KEY_ID")] {
            XCTAssertThrowsError(try S3Configuration.fromEnvironment(env)) { error in
                guard case let .missingCredentials(message)? = error as? ObjectStoreError else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains(names), message)
            }
        }
    }

    func testDescriptionHidesSecrets() throws {
        let c = S3Configuration(accessKey: "AKIAEXAMPLE", secretKey: "topsecretvalue", sessionToken: "sessiontokenvalue")
        for text in [c.description, String(describing: c), String(reflecting: c), "\(c)"] {
            XCTAssertFalse(text.contains("topsecretvalue"), text)
            XCTAssertFalse(text.contains("sessiontokenvalue"), text)
        }
    }

    func testCanonicalQuery() {
        XCTAssertEqual(AWSSigV4.canonicalQuery([("uploads", "")]), "uploads=")
        XCTAssertEqual(AWSSigV4.canonicalQuery([("uploadId", "a/b+c="), ("partNumber", "2")]), "partNumber=2&uploadId=a%2Fb%2Bc%3D")
        XCTAssertEqual(AWSSigV4.canonicalQuery([("prefix", "a b/ü~"), ("list-type", "2")]), "list-type=2&prefix=a%20b%2F%C3%BC~")
        XCTAssertEqual(AWSSigV4.uriEncode("dir/a b.kbseg", keepSlash: true), "dir/a%20b.kbseg")
    }

    func testXMLText() {
        let xml = "<R><Contents><Key>a&amp;b&#x41;&#66;</Key><Size>3</Size></Contents><Contents><Key>c</Key></Contents><Token/></R>"
        XCTAssertEqual(XMLText.blocks("Contents", in: xml).count, 2)
        XCTAssertEqual(XMLText.value("Key", in: xml), "a&bAB")
        XCTAssertEqual(XMLText.value("Token", in: xml), "")
        XCTAssertNil(XMLText.value("Missing", in: xml))
    }

    func testRegionMustBeARegionName() throws {
        let base = ["AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"]
        XCTAssertEqual(try S3Configuration.fromEnvironment(base.merging(["AWS_REGION": "eu-west-3"]) { $1 }).region, "eu-west-3")
        for bad in ["eu west", "us-east-1:s3", "EU-WEST-1", "r\u{e9}gion", "us-east-1\n"] {
            XCTAssertThrowsError(try S3Configuration.fromEnvironment(base.merging(["AWS_REGION": bad]) { $1 }), bad) { error in
                guard case let .invalidLocation(message)? = error as? ObjectStoreError else { return XCTFail("\(bad): \(error)") }
                XCTAssertTrue(message.contains("us-east-1"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

}
