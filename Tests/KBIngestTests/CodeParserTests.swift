import Foundation
import XCTest
@testable import KBIngest

final class CodeParserTests: XCTestCase {
    /// The declaration names (second path component) of `source`'s sections, "" for the preamble.
    private func declarations(_ source: String, _ language: String, file: String = "f",
                              line: UInt = #line) -> [String] {
        let doc = parse(source, .code, language: language, path: "src/" + file)
        XCTAssertEqual(doc.title, file, line: line)
        for s in doc.sections {
            XCTAssertEqual(s.headingPath.first, file, line: line)
            XCTAssertLessThanOrEqual(s.headingPath.count, 2, line: line)
        }
        return doc.sections.map { $0.headingPath.count == 2 ? $0.headingPath[1] : "" }
    }

    func testSwift() {
        let source = """
            import Foundation

            /// A doc comment goes with its declaration.
            @MainActor
            public final class Foo: Bar {
                func inner() {}
            }

            struct Point<T> { var x: T }
            extension Array where Element == Int {
            }
            func top(_ a: Int) -> Int { a }
            public protocol P {}
            enum E { case a }
            let text = \"\"\"
            class NotADeclaration {}
            \"\"\"
            actor A {}
            """
        XCTAssertEqual(declarations(source, "swift", file: "a.swift"), ["", "Foo", "Point", "Array", "top", "P", "E", "text", "A"])
        let doc = parse(source, .code, language: "swift", path: "a.swift")
        XCTAssertTrue(doc.sections[1].text.hasPrefix("/// A doc comment goes with its declaration.\n@MainActor\npublic final class Foo"))
        XCTAssertEqual(doc.sections[1].lineStart, 3)
        XCTAssertEqual(doc.sections[1].lineEnd, 7)
    }

    func testPython() {
        let source = """
            \"\"\"Module docstring.
            class of problems this module solves
            \"\"\"
            import os

            # comment
            @decorator
            def f(x):
                return x

            async def g():
                pass

            class C(Base):
                def method(self):
                    pass
            """
        XCTAssertEqual(declarations(source, "python", file: "m.py"), ["", "f", "g", "C"])
    }

    func testC() {
        let source = """
            #include <stdio.h>

            /* block
             * int fake(void) {
             */
            static int add(int a, int b) {
                return a + b;
            }
            int one_liner(void) { return 1; }
            int prototype(int);

            struct point {
                int x;
            };

            int
            main(int argc, char **argv)
            {
                return 0;
            }
            """
        XCTAssertEqual(declarations(source, "c", file: "x.c"), ["", "add", "one_liner", "point", "main"])
        let doc = parse(source, .code, language: "c", path: "x.c")
        XCTAssertTrue(doc.sections[4].text.hasPrefix("int\nmain("))
    }

    func testCpp() {
        let source = """
            #include <vector>
            namespace ns {
            int f();
            }
            template <typename T>
            class Box {
            };
            std::vector<int> Foo::bar(int x) const {
                return {};
            }
            int main() { return 0; }
            """
        XCTAssertEqual(declarations(source, "cpp", file: "x.cpp"), ["", "ns", "Box", "Foo::bar", "main"])
    }

    func testJavaScript() {
        let source = """
            import x from 'y';
            export function alpha(a) {
            }
            const beta = (x) => x;
            export default class Gamma {}
            async function delta() {}
            """
        XCTAssertEqual(declarations(source, "javascript", file: "x.js"), ["", "alpha", "beta", "Gamma", "delta"])
    }

    func testTypeScript() {
        let source = """
            import { X } from "y";
            export interface Shape { area(): number }
            export type ID = string;
            export const make = (n: number): Shape => ({ area: () => n });
            export enum Color { Red }
            export abstract class Base {}
            function helper<T>(x: T): T { return x; }
            """
        XCTAssertEqual(declarations(source, "typescript", file: "x.ts"), ["", "Shape", "ID", "make", "Color", "Base", "helper"])
    }

    func testGo() {
        let source = """
            package main

            import "fmt"

            type Server struct {
            }

            func (s *Server) Start() error {
                return nil
            }

            func main() {
                fmt.Println("hi")
            }
            """
        XCTAssertEqual(declarations(source, "go", file: "main.go"), ["", "Server", "Start", "main"])
    }

    func testRust() {
        let source = """
            use std::io;

            /// Doc
            #[derive(Debug)]
            pub struct Point { x: i32 }

            impl Point {
                fn new() -> Self { Point { x: 0 } }
            }

            impl<T: Clone> Trait for Wrapper<T> {
            }

            pub(crate) async fn run() {}
            macro_rules! m { () => {} }
            """
        XCTAssertEqual(declarations(source, "rust", file: "lib.rs"), ["", "Point", "Point", "Trait for Wrapper<T>", "run", "m"])
    }

    func testShell() {
        let source = """
            #!/bin/sh
            set -e

            # build it
            build() {
                make
            }

            function deploy {
                echo hi
            }
            """
        XCTAssertEqual(declarations(source, "shell", file: "run.sh"), ["", "build", "deploy"])
        let doc = parse(source, .code, language: "shell", path: "run.sh")
        XCTAssertEqual(doc.sections[1].text, "# build it\nbuild() {\n    make\n}")
        XCTAssertEqual(doc.sections[1].lineStart, 4)
    }

    func testSectionsAreVerbatimSourceWithExactRanges() {
        let source = "import a\n\nfunc one() {\n    x()\n}\n\nfunc two() {}\n"
        let doc = parse(source, .code, language: "swift", path: "s.swift")
        for s in doc.sections {
            XCTAssertEqual(sourceBytes(source, s.byteStart, s.byteEnd), s.text)
            XCTAssertEqual(sourceLines(source, s.lineStart, s.lineEnd), s.text)
        }
    }

    func testUnknownLanguageIsOnePreamble() {
        let doc = parse("some code\n\nmore code\n", .code, language: nil, path: "x.unknown")
        XCTAssertEqual(doc.sections.map(\.headingPath), [["x.unknown"]])
    }
}
