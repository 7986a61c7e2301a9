//! Reads task inputs and pipeline variables the way the agent passes them: `INPUT_<NAME>`,
//! public variables with `.` and spaces turned into `_`, secrets as `SECRET_<NAME>`.

use std::collections::BTreeMap;
use std::fmt;

/// Bad input: names the input (or the agent variable), says what is wrong and, where it
/// helps, what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    pub input: String,
    /// True when `input` names an agent variable rather than a task input.
    pub is_variable: bool,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl InputError {
    pub fn new(input: &str, message: impl Into<String>) -> InputError {
        InputError {
            input: input.to_string(),
            is_variable: false,
            message: message.into(),
            hint: None,
        }
    }

    /// A bad value of an agent variable (the agent's proxy settings, say).
    pub fn variable(name: &str, message: impl Into<String>) -> InputError {
        InputError {
            is_variable: true,
            ..InputError::new(name, message)
        }
    }

    /// "input `x`: what is wrong", without the hint.
    pub fn headline(&self) -> String {
        let subject = if self.is_variable {
            "variable"
        } else {
            "input"
        };
        format!("{subject} `{}`: {}", self.input, self.message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> InputError {
        self.hint = Some(hint.into());
        self
    }
}

/// Longest value we accept in a single-line input; longer ones are mistakes (a pasted file).
const MAX_LINE_INPUT: usize = 4096;
/// Longest value of a multi-line input (notebook lists, parameters, cluster JSON).
const MAX_TEXT_INPUT: usize = 256 * 1024;

/// A pick-list input: its options and default, shared by the core and the task.json test.
#[derive(Clone, Copy, Debug)]
pub struct PickList {
    pub input: &'static str,
    pub options: &'static [&'static str],
    pub default: &'static str,
}

pub struct Inputs<'a> {
    env: &'a BTreeMap<String, String>,
    /// The task inputs asked for, so a test can check each is one `task.json` declares.
    asked: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

/// The environment name of an input or variable: upper case, `.` and space → `_`.
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '.' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// `$(Name)` when the whole value is one unexpanded macro (the agent leaves undefined
/// variables that way).
fn unexpanded_macro(value: &str) -> Option<&str> {
    let inner = value.strip_prefix("$(")?.strip_suffix(')')?;
    (!inner.is_empty() && !inner.contains(['$', '(', ')'])).then_some(inner)
}

/// The first `$(Name)` inside a longer value.
fn embedded_macro(value: &str) -> Option<&str> {
    let start = value.find("$(")?;
    let end = start + value[start..].find(')')?;
    let inner = &value[start + 2..end];
    (!inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
    .then_some(&value[start..=end])
}

impl<'a> Inputs<'a> {
    pub fn new(env: &'a BTreeMap<String, String>) -> Inputs<'a> {
        Inputs {
            env,
            asked: Default::default(),
        }
    }

    /// Every task input asked for so far (by name, whether or not it was set).
    pub fn asked(&self) -> Vec<String> {
        self.asked.borrow().iter().cloned().collect()
    }

    fn input(&self, name: &str) -> Option<&'a str> {
        self.asked.borrow_mut().insert(name.to_string());
        self.lookup(&format!("INPUT_{}", env_name(name)))
    }

    pub fn env(&self) -> &'a BTreeMap<String, String> {
        self.env
    }

    fn lookup(&self, key: &str) -> Option<&'a str> {
        self.env
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && unexpanded_macro(v).is_none())
    }

    fn checked(
        &self,
        name: &str,
        value: Option<&str>,
        multiline: bool,
    ) -> Result<Option<String>, InputError> {
        let Some(value) = value else { return Ok(None) };
        if let Some(var) = embedded_macro(value) {
            return Err(InputError::new(
                name,
                format!("contains `{var}`, a variable that is not defined in this pipeline"),
            )
            .with_hint("define the variable (in the pipeline or a variable group), or remove it from the input"));
        }
        let max = if multiline {
            MAX_TEXT_INPUT
        } else {
            MAX_LINE_INPUT
        };
        if value.len() > max {
            return Err(InputError::new(
                name,
                format!("is {} bytes long; at most {max} are accepted", value.len()),
            ));
        }
        if !multiline && value.contains(['\n', '\r']) {
            return Err(InputError::new(name, "must be a single line"));
        }
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(InputError::new(name, "contains control characters"));
        }
        Ok(Some(value.to_string()))
    }

    /// A single-line input; empty or an unexpanded `$(X)` counts as missing.
    pub fn get(&self, name: &str) -> Result<Option<String>, InputError> {
        self.checked(name, self.input(name), false)
    }

    /// A multi-line input (lines are kept).
    pub fn text(&self, name: &str) -> Result<Option<String>, InputError> {
        self.checked(name, self.input(name), true)
    }

    /// Whether the input has a value other than `default` (the agent passes every input's
    /// task.json default, so "set" means "set to something else").
    pub fn is_set(&self, name: &str, default: Option<&str>) -> bool {
        self.input(name)
            .is_some_and(|value| default.is_none_or(|d| !value.eq_ignore_ascii_case(d)))
    }

    pub fn required(&self, name: &str) -> Result<String, InputError> {
        self.get(name)?
            .ok_or_else(|| InputError::new(name, "is required but was not set"))
    }

    /// A public pipeline variable such as `Build.SourceBranch`.
    pub fn variable(&self, name: &str) -> Option<String> {
        self.lookup(&env_name(name)).map(str::to_string)
    }

    /// A secret variable (`SECRET_<NAME>`), or a plain one of that name as a fallback.
    pub fn secret_variable(&self, name: &str) -> Option<String> {
        self.lookup(&format!("SECRET_{}", env_name(name)))
            .or_else(|| self.lookup(&env_name(name)))
            .map(str::to_string)
    }

    /// The service connection whose id is `id` (the value of a `connectedService:` input), as
    /// the agent hands it over.
    pub fn endpoint(&self, id: &str) -> Endpoint<'a> {
        Endpoint {
            env: self.env,
            id: id.to_string(),
        }
    }

    pub fn boolean(&self, name: &str, default: bool) -> Result<bool, InputError> {
        match self.get(name)?.map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("true" | "yes" | "1") => Ok(true),
            Some("false" | "no" | "0") => Ok(false),
            Some(other) => Err(InputError::new(
                name,
                format!("must be true or false, not `{other}`"),
            )),
        }
    }

    /// One of `options` (matched case-insensitively, returned as spelled in `options`).
    pub fn pick(
        &self,
        name: &str,
        options: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, InputError> {
        let Some(value) = self.get(name)? else {
            return Ok(default);
        };
        if let Some(option) = options.iter().find(|o| o.eq_ignore_ascii_case(&value)) {
            return Ok(option);
        }
        let mut error = InputError::new(
            name,
            format!("`{value}` is not one of: {}", options.join(", ")),
        );
        if let Some(close) = closest(&value, options) {
            error = error.with_hint(format!("did you mean `{close}`?"));
        }
        Err(error)
    }

    pub fn pick_list(&self, list: &PickList) -> Result<&'static str, InputError> {
        self.pick(list.input, list.options, list.default)
    }

    /// A non-negative number (fractions allowed), or `default` when unset.
    /// A whole number from 0 to `max`.
    pub fn whole_number(&self, name: &str, default: u32, max: u32) -> Result<u32, InputError> {
        let Some(value) = self.get(name)? else {
            return Ok(default);
        };
        match value.parse::<u64>() {
            Ok(n) if n <= u64::from(max) => Ok(n as u32),
            Ok(_) => Err(InputError::new(
                name,
                format!("`{value}` is out of range: use a whole number from 0 to {max}"),
            )),
            Err(_) => Err(InputError::new(
                name,
                format!("`{value}` is not a whole number (0 to {max})"),
            )),
        }
    }

    pub fn number(&self, name: &str, default: f64, max: f64) -> Result<f64, InputError> {
        let Some(value) = self.get(name)? else {
            return Ok(default);
        };
        match value.parse::<f64>() {
            Ok(n) if n.is_finite() && (0.0..=max).contains(&n) => Ok(n),
            Ok(_) => Err(InputError::new(
                name,
                format!("`{value}` is out of range: use a number from 0 to {max}"),
            )),
            Err(_) => Err(InputError::new(name, format!("`{value}` is not a number"))),
        }
    }
}

/// The lines of a multi-line input, numbered from 1 and trimmed. A line break is LF or CRLF;
/// a carriage return anywhere else is refused, because each reader splits on it differently
/// (the agent's log breaks the line there, Databricks keeps it inside the value).
pub fn input_lines<'t>(input: &str, text: &'t str) -> Result<Vec<(usize, &'t str)>, InputError> {
    let mut lines = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.contains('\r') {
            return Err(InputError::new(
                input,
                format!(
                    "line {} (`{}`) contains a carriage return (CR) inside it",
                    index + 1,
                    line.trim().replace('\r', "\\r")
                ),
            )
            .with_hint("put one entry per line, with LF or CRLF line endings"));
        }
        lines.push((index + 1, line.trim()));
    }
    Ok(lines)
}

/// The option closest to a misspelling, if it is close enough to be a likely typo.
pub fn closest<'o>(value: &str, options: &[&'o str]) -> Option<&'o str> {
    let value = value.to_ascii_lowercase();
    options
        .iter()
        .map(|o| (edit_distance(&value, &o.to_ascii_lowercase()), *o))
        .filter(|(d, o)| *d <= 2.max(o.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

/// A service connection: `ENDPOINT_URL_<id>`, `ENDPOINT_AUTH_SCHEME_<id>`,
/// `ENDPOINT_AUTH_PARAMETER_<id>_<KEY>` and `ENDPOINT_DATA_<id>_<KEY>` (keys upper-cased, as
/// azure-pipelines-task-lib reads them), with the JSON forms `ENDPOINT_AUTH_<id>` and
/// `ENDPOINT_DATA_<id>` as fallbacks.
pub struct Endpoint<'a> {
    env: &'a BTreeMap<String, String>,
    pub id: String,
}

impl Endpoint<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.env
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Whether the agent handed this connection to the step at all.
    pub fn exists(&self) -> bool {
        self.url().is_some() || self.scheme().is_some()
    }

    pub fn url(&self) -> Option<String> {
        self.get(&format!("ENDPOINT_URL_{}", self.id))
    }

    pub fn scheme(&self) -> Option<String> {
        self.get(&format!("ENDPOINT_AUTH_SCHEME_{}", self.id))
            .or_else(|| {
                let json = self.get(&format!("ENDPOINT_AUTH_{}", self.id))?;
                let value: serde_json::Value = serde_json::from_str(&json).ok()?;
                value["scheme"].as_str().map(str::to_string)
            })
    }

    /// An authorization parameter (`serviceprincipalid`, `tenantid`, ...); names compare
    /// case-insensitively, as the agent's do.
    pub fn auth(&self, key: &str) -> Option<String> {
        self.get(&format!(
            "ENDPOINT_AUTH_PARAMETER_{}_{}",
            self.id,
            key.to_ascii_uppercase()
        ))
        .or_else(|| {
            self.json_field(
                &format!("ENDPOINT_AUTH_{}", self.id),
                Some("parameters"),
                key,
            )
        })
    }

    /// A data parameter (`environment`, `activeDirectoryAuthority`, ...).
    pub fn data(&self, key: &str) -> Option<String> {
        self.get(&format!(
            "ENDPOINT_DATA_{}_{}",
            self.id,
            key.to_ascii_uppercase()
        ))
        .or_else(|| self.json_field(&format!("ENDPOINT_DATA_{}", self.id), None, key))
    }

    fn json_field(&self, variable: &str, within: Option<&str>, key: &str) -> Option<String> {
        let value: serde_json::Value = serde_json::from_str(&self.get(variable)?).ok()?;
        let object = match within {
            Some(name) => value.get(name)?.as_object()?.clone(),
            None => value.as_object()?.clone(),
        };
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_inputs_variables_and_secrets_as_the_agent_passes_them() {
        let env = env(&[
            ("INPUT_NOTEBOOKPATHS", " a\nb "),
            ("INPUT_DATABRICKSHOST", "$(DATABRICKS_HOST)"),
            ("BUILD_SOURCEBRANCH", "refs/heads/main"),
            ("SECRET_DATABRICKS_TOKEN", "dapi123"),
            ("INPUT_REPOPATH", "/Repos/$(Build.BuildId)/x"),
            ("INPUT_MODE", "Delet"),
        ]);
        let inputs = Inputs::new(&env);
        assert_eq!(
            inputs.text("notebookPaths").unwrap().as_deref(),
            Some("a\nb")
        );
        assert_eq!(inputs.get("databricksHost").unwrap(), None);
        assert_eq!(
            inputs.variable("Build.SourceBranch").as_deref(),
            Some("refs/heads/main")
        );
        assert_eq!(
            inputs.secret_variable("DATABRICKS_TOKEN").as_deref(),
            Some("dapi123")
        );
        let err = inputs.get("repoPath").unwrap_err();
        assert!(err.to_string().contains("`$(Build.BuildId)`"), "{err}");
        let err = inputs
            .pick(
                "mode",
                &["createOrUpdate", "update", "delete"],
                "createOrUpdate",
            )
            .unwrap_err();
        assert_eq!(err.hint.as_deref(), Some("did you mean `delete`?"));
        assert!(
            inputs.get("notebookPaths").is_err(),
            "single-line read of a multi-line value"
        );
    }

    #[test]
    fn closest_finds_typos_only() {
        assert_eq!(
            closest("serverles", &["existing", "new", "serverless"]),
            Some("serverless")
        );
        assert_eq!(closest("banana", &["existing", "new", "serverless"]), None);
    }
}
