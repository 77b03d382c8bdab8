//! An action's form: what a person sent, checked against the fields the
//! plugin declared (`greenroom:plugin@0.2.0`'s `input-field`), before the
//! plugin is called. The one place these rules live: the API answers with
//! its messages and the UI shows them beside the form.

use serde_json::{Map, Value};

use super::bindings::greenroom::plugin::types::{Action, Input, InputField, InputKind, InputValue};

/// Longest text value accepted, whatever a field declares.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Why a form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// What the person sent does not fit the form: the text says which
    /// field and what to change.
    #[error("{0}")]
    Invalid(String),
    /// The plugin declared a form that cannot be checked (two fields of
    /// one name, a pattern that does not compile, a default outside its
    /// own bounds).
    #[error("the action's form is broken: {0}")]
    Declared(String),
}

/// The form's values in the fields' order and types, each field's default
/// filling what was left out. `sent` is the request's `input` object.
pub fn check(action: &Action, sent: &Map<String, Value>) -> Result<Vec<Input>, InputError> {
    let fields = &action.inputs;
    for (i, f) in fields.iter().enumerate() {
        if fields[..i].iter().any(|g| g.name == f.name) {
            return Err(InputError::Declared(format!(
                "two fields are named '{}'",
                f.name
            )));
        }
    }
    if let Some(unknown) = sent.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        return Err(InputError::Invalid(if names.is_empty() {
            format!(
                "'{}' takes no input, but '{unknown}' was sent",
                action.label
            )
        } else {
            format!(
                "'{unknown}' is not a field of '{}' (its fields: {})",
                action.label,
                names.join(", ")
            )
        }));
    }
    let mut values = Vec::with_capacity(fields.len());
    for field in fields {
        let given = sent.get(&field.name).filter(|v| !is_empty(v));
        if let Some(value) = value_of(field, given)? {
            values.push(Input {
                name: field.name.clone(),
                value,
            });
        } else if field.required {
            return Err(InputError::Invalid(format!(
                "{} is required",
                field_name(field)
            )));
        }
    }
    Ok(values)
}

/// What `run` receives for `action` of `plugin`: the checked values, and
/// the input as one JSON object (what the record of runs keeps; a 0.1.0
/// plugin declares no fields and reads this object as it likes).
pub fn prepare(
    plugin: &super::Loaded,
    action: &Action,
    sent: Map<String, Value>,
) -> Result<(Vec<Input>, Value), InputError> {
    if plugin.contract == "0.1.0" {
        return Ok((Vec::new(), Value::Object(sent)));
    }
    let checked = check(action, &sent)?;
    let json = to_json(&checked);
    Ok((checked, json))
}

/// An action as the API and `plugin run` show it, with its form.
pub fn action_json(a: &Action) -> Value {
    let fields: Vec<Value> = a.inputs.iter().map(field_json).collect();
    serde_json::json!({
        "id": a.id,
        "label": a.label,
        "description": a.description,
        "confirm": a.confirm,
        "inputs": fields,
    })
}

fn field_json(f: &InputField) -> Value {
    let mut v = serde_json::json!({
        "name": f.name,
        "label": f.label,
        "help": f.help,
        "required": f.required,
    });
    let extra = match &f.kind {
        InputKind::Text(t) => serde_json::json!({
            "type": "text",
            "default": t.default,
            "maxLength": t.max_length.map_or(MAX_TEXT_CHARS, |m| (m as usize).min(MAX_TEXT_CHARS)),
            "pattern": t.pattern,
            "multiline": t.multiline,
        }),
        InputKind::Number(n) => serde_json::json!({
            "type": "number",
            "default": n.default,
            "min": n.min,
            "max": n.max,
            "integer": n.integer,
        }),
        InputKind::Choice(c) => serde_json::json!({
            "type": "choice",
            "default": c.default,
            "options": c.options.iter().map(|o| serde_json::json!({"value": o.value, "label": o.label})).collect::<Vec<_>>(),
        }),
        InputKind::Flag(default) => serde_json::json!({"type": "flag", "default": default}),
    };
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    v
}

/// The values as one JSON object, as the record of runs keeps them.
pub fn to_json(values: &[Input]) -> Value {
    Value::Object(
        values
            .iter()
            .map(|i| {
                let v = match &i.value {
                    InputValue::Text(t) => Value::from(t.as_str()),
                    InputValue::Number(n) => Value::from(*n),
                    InputValue::Flag(b) => Value::from(*b),
                };
                (i.name.clone(), v)
            })
            .collect(),
    )
}

/// An empty text box sends "" or nothing: both mean "not given".
fn is_empty(v: &Value) -> bool {
    v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty())
}

fn field_name(field: &InputField) -> String {
    format!("'{}' ({})", field.label, field.name)
}

/// One field's value: what was sent, else the default, checked.
fn value_of(field: &InputField, given: Option<&Value>) -> Result<Option<InputValue>, InputError> {
    let name = field_name(field);
    let invalid = |what: String| InputError::Invalid(format!("{name} {what}"));
    // A default that breaks the field's own rules is the plugin's bug.
    let declared = |e: InputError| match e {
        InputError::Invalid(m) => InputError::Declared(format!("the default of {m}")),
        other => other,
    };
    match &field.kind {
        InputKind::Text(t) => {
            let value = match given {
                Some(Value::String(s)) => s.clone(),
                Some(other) => return Err(invalid(format!("must be text, not {other}"))),
                None => match &t.default {
                    Some(d) => {
                        return check_text(&name, t, d)
                            .map(|()| Some(InputValue::Text(d.clone())))
                            .map_err(declared);
                    }
                    None => return Ok(None),
                },
            };
            check_text(&name, t, &value)?;
            Ok(Some(InputValue::Text(value)))
        }
        InputKind::Number(n) => {
            let value = match given {
                Some(Value::Number(x)) => x.as_f64().unwrap_or(f64::NAN),
                // A form's text box sends the number as text.
                Some(Value::String(s)) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| invalid(format!("must be a number, not '{s}'")))?,
                Some(other) => return Err(invalid(format!("must be a number, not {other}"))),
                None => match n.default {
                    Some(d) => {
                        return check_number(&name, n, d)
                            .map(|()| Some(InputValue::Number(d)))
                            .map_err(declared);
                    }
                    None => return Ok(None),
                },
            };
            check_number(&name, n, value)?;
            Ok(Some(InputValue::Number(value)))
        }
        InputKind::Choice(c) => {
            let value = match given {
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    return Err(invalid(format!("must be one of its choices, not {other}")));
                }
                None => match &c.default {
                    Some(d) => d.clone(),
                    None => return Ok(None),
                },
            };
            if !c.options.iter().any(|o| o.value == value) {
                let choices: Vec<&str> = c.options.iter().map(|o| o.value.as_str()).collect();
                let e = invalid(format!(
                    "must be one of {}, not '{value}'",
                    choices.join(", ")
                ));
                return Err(if given.is_none() { declared(e) } else { e });
            }
            Ok(Some(InputValue::Text(value)))
        }
        InputKind::Flag(default) => match given {
            Some(Value::Bool(b)) => Ok(Some(InputValue::Flag(*b))),
            Some(Value::String(s)) if s == "true" || s == "on" => Ok(Some(InputValue::Flag(true))),
            Some(Value::String(s)) if s == "false" || s == "off" => {
                Ok(Some(InputValue::Flag(false)))
            }
            Some(other) => Err(invalid(format!("must be true or false, not {other}"))),
            None => Ok(Some(InputValue::Flag(*default))),
        },
    }
}

fn check_text(
    name: &str,
    t: &super::bindings::greenroom::plugin::types::TextInput,
    value: &str,
) -> Result<(), InputError> {
    let chars = value.chars().count();
    let max = t
        .max_length
        .map_or(MAX_TEXT_CHARS, |m| (m as usize).min(MAX_TEXT_CHARS));
    if chars > max {
        return Err(InputError::Invalid(format!(
            "{name} is {chars} characters long; at most {max} are accepted"
        )));
    }
    if !t.multiline && value.contains(['\n', '\r']) {
        return Err(InputError::Invalid(format!("{name} must be one line")));
    }
    if let Some(pattern) = &t.pattern {
        // The whole value must match, as in an HTML form's `pattern`.
        let re = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                InputError::Declared(format!("the pattern of {name} does not compile: {e}"))
            })?;
        if !re.is_match(value) {
            return Err(InputError::Invalid(format!(
                "{name} must match {pattern}, and '{value}' does not"
            )));
        }
    }
    Ok(())
}

fn check_number(
    name: &str,
    n: &super::bindings::greenroom::plugin::types::NumberInput,
    value: f64,
) -> Result<(), InputError> {
    if !value.is_finite() {
        return Err(InputError::Invalid(format!(
            "{name} must be a finite number"
        )));
    }
    if n.integer && value.fract() != 0.0 {
        return Err(InputError::Invalid(format!(
            "{name} must be a whole number, not {value}"
        )));
    }
    if let Some(min) = n.min.filter(|m| value < *m) {
        return Err(InputError::Invalid(format!(
            "{name} must be at least {min}, not {value}"
        )));
    }
    if let Some(max) = n.max.filter(|m| value > *m) {
        return Err(InputError::Invalid(format!(
            "{name} must be at most {max}, not {value}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::greenroom::plugin::types::{
        Choice, ChoiceInput, NumberInput, TextInput,
    };
    use serde_json::json;

    fn field(name: &str, required: bool, kind: InputKind) -> InputField {
        InputField {
            name: name.into(),
            label: name.to_uppercase(),
            help: None,
            required,
            kind,
        }
    }

    fn deploy() -> Action {
        Action {
            id: "deploy".into(),
            label: "Deploy".into(),
            description: String::new(),
            confirm: true,
            inputs: vec![
                field(
                    "ref",
                    true,
                    InputKind::Text(TextInput {
                        default: Some("main".into()),
                        max_length: Some(100),
                        pattern: Some("[a-z0-9._/-]+".into()),
                        multiline: false,
                    }),
                ),
                field(
                    "replicas",
                    false,
                    InputKind::Number(NumberInput {
                        default: None,
                        min: Some(1.0),
                        max: Some(10.0),
                        integer: true,
                    }),
                ),
                field(
                    "region",
                    true,
                    InputKind::Choice(ChoiceInput {
                        options: vec![
                            Choice {
                                value: "eu".into(),
                                label: "Europe".into(),
                            },
                            Choice {
                                value: "us".into(),
                                label: "America".into(),
                            },
                        ],
                        default: None,
                    }),
                ),
                field("dry-run", false, InputKind::Flag(true)),
            ],
        }
    }

    fn sent(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_valid_form_becomes_typed_values_with_defaults() {
        let values = check(&deploy(), &sent(json!({"region": "eu", "replicas": "3"}))).unwrap();
        assert_eq!(
            to_json(&values),
            json!({"ref": "main", "replicas": 3.0, "region": "eu", "dry-run": true})
        );
        let values = check(
            &deploy(),
            &sent(json!({"ref": "release/1.2", "region": "us", "dry-run": false, "replicas": ""})),
        )
        .unwrap();
        assert_eq!(
            to_json(&values),
            json!({"ref": "release/1.2", "region": "us", "dry-run": false})
        );
    }

    #[test]
    fn each_broken_rule_names_the_field() {
        let refused = |v: Value| match check(&deploy(), &sent(v)) {
            Err(InputError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused(json!({})).contains("'REGION' (region) is required"));
        assert!(refused(json!({"region": "asia"})).contains("must be one of eu, us, not 'asia'"));
        assert!(refused(json!({"region": "eu", "ref": "Main Branch"})).contains("must match"));
        assert!(refused(json!({"region": "eu", "ref": "x".repeat(101)})).contains("at most 100"));
        assert!(refused(json!({"region": "eu", "replicas": 2.5})).contains("whole number"));
        assert!(refused(json!({"region": "eu", "replicas": 11})).contains("at most 10"));
        assert!(refused(json!({"region": "eu", "replicas": "many"})).contains("must be a number"));
        assert!(refused(json!({"region": "eu", "dry-run": 1})).contains("true or false"));
        assert!(refused(json!({"region": "eu", "ref": "a\nb"})).contains("one line"));
        let unknown = refused(json!({"region": "eu", "force": true}));
        assert!(
            unknown.contains(
                "'force' is not a field of 'Deploy' (its fields: ref, replicas, region, dry-run)"
            ),
            "{unknown}"
        );
        let mut plain = deploy();
        plain.inputs.clear();
        assert_eq!(
            check(&plain, &sent(json!({"ref": "x"}))).unwrap_err(),
            InputError::Invalid("'Deploy' takes no input, but 'ref' was sent".into())
        );
        assert!(check(&plain, &sent(json!({}))).unwrap().is_empty());
    }

    #[test]
    fn a_broken_declaration_is_the_plugins_fault() {
        let mut twice = deploy();
        twice.inputs.push(twice.inputs[0].clone());
        assert!(
            matches!(check(&twice, &sent(json!({"region": "eu"}))), Err(InputError::Declared(m)) if m.contains("two fields are named 'ref'"))
        );
        let mut bad_pattern = deploy();
        if let InputKind::Text(t) = &mut bad_pattern.inputs[0].kind {
            t.pattern = Some("(".into());
        }
        assert!(
            matches!(check(&bad_pattern, &sent(json!({"region": "eu"}))), Err(InputError::Declared(m)) if m.contains("does not compile"))
        );
        let mut bad_default = deploy();
        if let InputKind::Choice(c) = &mut bad_default.inputs[2].kind {
            c.default = Some("mars".into());
        }
        assert!(
            matches!(check(&bad_default, &sent(json!({}))), Err(InputError::Declared(m)) if m.contains("'mars'"))
        );
    }
}
