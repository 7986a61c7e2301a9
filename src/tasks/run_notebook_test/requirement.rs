//! Whether a `libraries` line is a Python requirement as pip reads it (PEP 508): a name, then
//! extras, version specifiers or `@ URL`, then environment markers after `;`. A line that is
//! not is refused before any request, instead of failing on the cluster minutes later.
//!
//! Checked here, not with a PEP 508 crate: the well-kept one (`pep508_rs`) brings full `regex`
//! and Unicode tables into the wasm core, several times the size of this grammar.

/// Longer lines are refused: no requirement needs more.
const MAX_LENGTH: usize = 1_000;

const COMPARISONS: [&str; 8] = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"];

/// The marker variables PEP 508 (and `extra`, `dependency_groups`) defines.
const MARKER_VARIABLES: [&str; 14] = [
    "python_version",
    "python_full_version",
    "os_name",
    "sys_platform",
    "platform_release",
    "platform_system",
    "platform_version",
    "platform_machine",
    "platform_python_implementation",
    "implementation_name",
    "implementation_version",
    "extra",
    "extras",
    "dependency_groups",
];

/// `Ok` for a valid requirement; otherwise what is wrong, for the error message.
pub fn check(requirement: &str) -> Result<(), String> {
    if requirement.len() > MAX_LENGTH {
        return Err(format!("is longer than {MAX_LENGTH} characters"));
    }
    if let Some(c) = requirement.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {:?}", c));
    }
    let mut parser = Parser {
        text: requirement,
        at: 0,
    };
    parser.requirement()
}

struct Parser<'t> {
    text: &'t str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn skip_spaces(&mut self) -> bool {
        let before = self.at;
        while self.rest().starts_with([' ', '\t']) {
            self.at += 1;
        }
        self.at > before
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn unexpected(&self, wanted: &str) -> String {
        match self.rest().chars().next() {
            Some(c) => format!(
                "is not a PyPI requirement (PEP 508): `{c}` at character {} where {wanted} was expected",
                self.at + 1
            ),
            None => format!("is not a PyPI requirement (PEP 508): it ends where {wanted} was expected"),
        }
    }

    /// A name: letters and digits, with `-`, `_` and `.` inside.
    fn name(&mut self, what: &str) -> Result<&str, String> {
        self.skip_spaces();
        let start = self.at;
        let run = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(self.rest().len());
        // Inside only: a trailing `-`, `_` or `.` is left for the caller to refuse.
        let name = self.text[start..start + run].trim_end_matches(['-', '_', '.']);
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(self.unexpected(what));
        }
        self.at += name.len();
        Ok(name)
    }

    fn requirement(&mut self) -> Result<(), String> {
        self.name("a package name")?;
        // Extras: `[]`, or names separated by commas.
        if self.eat("[") && !self.eat("]") {
            loop {
                self.name("an extra's name")?;
                if self.eat("]") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.unexpected("`,` or `]`"));
                }
            }
        }
        self.skip_spaces();
        if self.eat("@") {
            self.url()?;
        } else if self.eat("(") {
            self.versions()?;
            if !self.eat(")") {
                return Err(self.unexpected("`)`"));
            }
        } else if COMPARISONS.iter().any(|op| self.rest().starts_with(op)) {
            self.versions()?;
        }
        if self.eat(";") {
            self.marker()?;
        }
        self.skip_spaces();
        if self.rest().is_empty() {
            Ok(())
        } else {
            Err(self.unexpected("a version, `;` or the end"))
        }
    }

    fn versions(&mut self) -> Result<(), String> {
        loop {
            self.comparison()?;
            self.version()?;
            if !self.eat(",") {
                return Ok(());
            }
        }
    }

    fn comparison(&mut self) -> Result<(), String> {
        self.skip_spaces();
        match COMPARISONS.iter().find(|op| self.rest().starts_with(**op)) {
            Some(op) => {
                self.at += op.len();
                Ok(())
            }
            None => Err(self.unexpected("a comparison (==, >=, ~=, …)")),
        }
    }

    fn version(&mut self) -> Result<(), String> {
        self.skip_spaces();
        let length = self
            .rest()
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '+' | '!'))
            })
            .unwrap_or(self.rest().len());
        if length == 0 {
            return Err(self.unexpected("a version"));
        }
        self.at += length;
        Ok(())
    }

    /// `name @ URL`: a URL with a scheme, ended by a space before a marker.
    fn url(&mut self) -> Result<(), String> {
        self.skip_spaces();
        let length = self
            .rest()
            .find(char::is_whitespace)
            .unwrap_or(self.rest().len());
        let url = &self.text[self.at..self.at + length];
        if crate::text::parse_url(url).is_err() {
            return Err(format!(
                "is not a PyPI requirement (PEP 508): `{url}` after `@` is not a URL"
            ));
        }
        self.at += length;
        Ok(())
    }

    /// `marker_or`: `and`/`or` of comparisons, with parentheses.
    fn marker(&mut self) -> Result<(), String> {
        loop {
            if self.eat("(") {
                self.marker()?;
                if !self.eat(")") {
                    return Err(self.unexpected("`)`"));
                }
            } else {
                self.marker_value()?;
                self.marker_operator()?;
                self.marker_value()?;
            }
            if !(self.keyword("and") || self.keyword("or")) {
                return Ok(());
            }
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        self.skip_spaces();
        let follows = self.rest().strip_prefix(word);
        if follows.is_some_and(|rest| rest.starts_with([' ', '\t', '('])) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn marker_operator(&mut self) -> Result<(), String> {
        if self.keyword("in") {
            return Ok(());
        }
        if self.keyword("not") {
            return if self.keyword("in") {
                Ok(())
            } else {
                Err(self.unexpected("`in`"))
            };
        }
        self.comparison()
    }

    fn marker_value(&mut self) -> Result<(), String> {
        self.skip_spaces();
        if let Some(quote) = self
            .rest()
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\''))
        {
            let Some(length) = self.rest()[1..].find(quote) else {
                return Err(self.unexpected("a closing quote"));
            };
            self.at += length + 2;
            return Ok(());
        }
        let name = self.name("a marker variable or a quoted string")?;
        if MARKER_VARIABLES.contains(&name) {
            Ok(())
        } else {
            Err(format!(
                "is not a PyPI requirement (PEP 508): `{name}` is not an environment marker (python_version, sys_platform, …)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn requirements_pip_takes_pass() {
        for good in [
            "pandas",
            "pandas==2.2.2",
            "great-expectations[spark]>=1.0",
            "requests[security, socks] >= 2.8.1, == 2.8.*",
            "numpy (>=1.26,<2)",
            "name @ https://example.com/pkg-1.0-py3-none-any.whl",
            "name@file:///tmp/x.whl",
            "pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee ; python_version >= \"3.8\"",
            "argparse;python_version<\"2.7\"",
            "pywin32 >=1.0 ; sys_platform == 'win32' and (python_version >= '3' or extra == 'x')",
            "A.B-C_D",
            "x===1.0+local",
            "pkg ~= 1.4.5",
            "pkg != 1.0.post1",
            "pkg; 'linux' in sys_platform",
            "pkg; 'x' not in extra",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_where() {
        for (bad, why) in [
            ("npm: left-pad@^1.3.0", "`:` at character 4"),
            ("--index-url https://x", "`-` at character 1"),
            ("-e .", "`-` at character 1"),
            ("pandas=2.2", "`=` at character 7"),
            ("pandas==", "it ends where a version was expected"),
            ("pandas>=1,", "it ends where a comparison"),
            ("pkg[", "an extra's name"),
            ("pkg[a b]", "`,` or `]`"),
            ("pkg (>=1", "`)`"),
            (
                "pkg; python_versio >= '3'",
                "`python_versio` is not an environment marker",
            ),
            ("pkg; python_version >= '3", "a closing quote"),
            ("pkg; python_version", "a comparison"),
            ("pkg @ not a url", "`not` after `@` is not a URL"),
            ("pkg-", "`-` at character 4"),
            ("_pkg", "`_` at character 1"),
            ("", "it ends where a package name"),
            ("pkg\u{7}", "control character"),
            ("pkg extra", "`e` at character 5"),
        ] {
            let error = check(bad).unwrap_err();
            assert!(error.contains(why), "{bad:?}: {error}");
        }
        assert!(check(&"a".repeat(1_001))
            .unwrap_err()
            .contains("longer than"));
    }
}
