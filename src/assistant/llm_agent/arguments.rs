//! Whether a tool call's arguments follow the tool's own schema (the JSON schema the model was
//! given in [`super::tools::specs`]), before the tool runs.
//!
//! Two kinds of failure, answered differently by the loop in [`super`]:
//! - **malformed**: not JSON, not an object, a required field missing, a value of the wrong
//!   type. The call cannot be run as meant; it goes back to the model as a tool error once, and
//!   a second malformed call ends the model's turn with a truthful sentence.
//! - **out of range**: well formed, but a value the tool does not allow (a date beyond its
//!   range, a meal that is not in its list, a weight of 0 g). Refused with the rule; the model
//!   may correct it like any tool error.
//!
//! Only the part of JSON schema the specs use is read: `type`, `properties`, `required`,
//! `items`, `minItems`, `enum`, `minimum`, `maximum`, `exclusiveMinimum`.

use serde_json::{json, Value};

use crate::llm::model::{ToolCall, ToolSpec};

/// Why a call's arguments were not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Invalid {
    /// The call cannot be read as the tool means it; each line says what is wrong.
    Malformed(Vec<String>),
    /// Readable, but a value is out of what the tool allows.
    OutOfRange(Vec<String>),
}

impl Invalid {
    /// What the model reads back: what is wrong, and that nothing was done.
    pub(super) fn tool_result(&self) -> Value {
        match self {
            Self::Malformed(problems) => json!({
                "saved": false,
                "error": format!("the call could not be read: {}", problems.join("; ")),
                "rule": "arguments_follow_the_schema",
                "note": "nothing was done; call the tool again with one JSON object that follows its parameters",
            }),
            Self::OutOfRange(problems) => json!({
                "saved": false,
                "error": format!("refused: {}", problems.join("; ")),
                "rule": "values_within_the_allowed_range",
                "note": "nothing was done; use a value within the range, or tell the person it cannot be logged",
            }),
        }
    }
}

/// Checks `call` against its tool's spec in `specs`; a tool not in `specs` is left to the tool
/// runner (which answers that there is no such tool).
pub(super) fn check(specs: &[ToolSpec], call: &ToolCall) -> Result<(), Invalid> {
    let Some(spec) = specs.iter().find(|spec| spec.name == call.name) else {
        return Ok(());
    };
    if call.arguments.is_string() {
        return Err(Invalid::Malformed(vec![
            "the arguments are not valid JSON".to_owned()
        ]));
    }
    let mut problems = Problems::default();
    walk(
        &spec.parameters,
        &call.arguments,
        "arguments",
        &mut problems,
    );
    if !problems.malformed.is_empty() {
        Err(Invalid::Malformed(problems.malformed))
    } else if !problems.out_of_range.is_empty() {
        Err(Invalid::OutOfRange(problems.out_of_range))
    } else {
        Ok(())
    }
}

#[derive(Default)]
struct Problems {
    malformed: Vec<String>,
    out_of_range: Vec<String>,
}

fn walk(schema: &Value, value: &Value, path: &str, problems: &mut Problems) {
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        if !has_type(value, expected) {
            problems
                .malformed
                .push(format!("{path} must be {}", type_words(expected)));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let listed: Vec<String> = allowed.iter().map(Value::to_string).collect();
            problems.out_of_range.push(format!(
                "{path} is {value}, not one of {}",
                listed.join(", ")
            ));
        }
    }
    if let Some(number) = value.as_f64() {
        check_bounds(schema, number, value, path, problems);
    }
    if let Some(object) = value.as_object() {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if object.get(required).is_none_or(Value::is_null) {
                problems
                    .malformed
                    .push(format!("{path}.{required} is required"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, field) in object {
                if let (Some(field_schema), false) = (properties.get(name), field.is_null()) {
                    walk(field_schema, field, &format!("{path}.{name}"), problems);
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                problems
                    .malformed
                    .push(format!("{path} must list at least {min}"));
            }
        }
        if let Some(item_schema) = schema.get("items") {
            for (index, item) in items.iter().enumerate() {
                walk(item_schema, item, &format!("{path}[{index}]"), problems);
            }
        }
    }
}

fn check_bounds(schema: &Value, number: f64, value: &Value, path: &str, problems: &mut Problems) {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let (minimum, maximum) = (bound("minimum"), bound("maximum"));
    let range = match (minimum, maximum) {
        (Some(low), Some(high)) => format!(" (allowed: {low} to {high})"),
        _ => String::new(),
    };
    if let Some(minimum) = minimum.filter(|minimum| number < *minimum) {
        problems.out_of_range.push(format!(
            "{path} is {value}, less than the minimum {minimum}{range}"
        ));
    }
    if let Some(maximum) = maximum.filter(|maximum| number > *maximum) {
        problems.out_of_range.push(format!(
            "{path} is {value}, more than the maximum {maximum}{range}"
        ));
    }
    if let Some(floor) = bound("exclusiveMinimum").filter(|floor| number <= *floor) {
        problems
            .out_of_range
            .push(format!("{path} is {value}; it must be more than {floor}"));
    }
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn type_words(expected: &str) -> &str {
    match expected {
        "object" => "an object",
        "array" => "a list",
        "string" => "text",
        "number" => "a number",
        "integer" => "a whole number",
        "boolean" => "true or false",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::llm_agent::tools::specs;

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: "call_1".into(),
            name: name.into(),
            arguments,
        }
    }

    fn checked(arguments: Value) -> Result<(), Invalid> {
        check(&specs(true), &call("log_food", arguments))
    }

    #[test]
    fn a_call_that_follows_the_schema_passes() {
        assert_eq!(
            checked(
                json!({"description": "eggs", "days_ago": 30, "meal_type": "lunch", "items": [{"name": "egg", "grams": 100}]})
            ),
            Ok(())
        );
        // A tool not offered is the runner's to answer.
        assert_eq!(check(&specs(false), &call("remember", json!(null))), Ok(()));
    }

    #[test]
    fn text_that_is_not_json_and_missing_fields_are_malformed() {
        assert_eq!(
            check(&specs(true), &call("log_food", json!("{\"items\": ["))),
            Err(Invalid::Malformed(vec![
                "the arguments are not valid JSON".into()
            ]))
        );
        assert_eq!(
            checked(json!({"description": "eggs", "items": [{"name": "egg"}]})),
            Err(Invalid::Malformed(vec![
                "arguments.items[0].grams is required".into()
            ]))
        );
        assert_eq!(
            checked(json!({"description": "eggs", "items": [{"name": "egg", "grams": "100"}]})),
            Err(Invalid::Malformed(vec![
                "arguments.items[0].grams must be a number".into()
            ]))
        );
        assert_eq!(
            checked(json!({"description": "eggs", "items": []})),
            Err(Invalid::Malformed(vec![
                "arguments.items must list at least 1".into()
            ]))
        );
        assert_eq!(
            checked(json!([1, 2])),
            Err(Invalid::Malformed(vec![
                "arguments must be an object".into()
            ]))
        );
        // A malformed problem outranks a range problem in the same call.
        assert!(matches!(
            checked(json!({"description": "eggs", "days_ago": 100000, "items": [{"name": "egg"}]})),
            Err(Invalid::Malformed(_))
        ));
    }

    #[test]
    fn values_beyond_the_range_are_refused_with_the_range() {
        assert_eq!(
            checked(
                json!({"description": "eggs", "days_ago": 100000, "items": [{"name": "egg", "grams": 100}]})
            ),
            Err(Invalid::OutOfRange(vec![
                "arguments.days_ago is 100000, more than the maximum 30 (allowed: 0 to 30)".into()
            ]))
        );
        assert!(matches!(
            checked(
                json!({"description": "eggs", "days_ago": 31, "items": [{"name": "egg", "grams": 100}]})
            ),
            Err(Invalid::OutOfRange(_))
        ));
        assert!(matches!(
            checked(
                json!({"description": "eggs", "days_ago": -1, "items": [{"name": "egg", "grams": 100}]})
            ),
            Err(Invalid::OutOfRange(_))
        ));
        assert!(matches!(
            checked(json!({"description": "eggs", "items": [{"name": "egg", "grams": 0}]})),
            Err(Invalid::OutOfRange(_))
        ));
        assert!(matches!(
            checked(
                json!({"description": "eggs", "meal_type": "brunch", "items": [{"name": "egg", "grams": 100}]})
            ),
            Err(Invalid::OutOfRange(_))
        ));
    }

    #[test]
    fn the_model_reads_the_problem_and_the_rule() {
        let malformed = Invalid::Malformed(vec!["the arguments are not valid JSON".into()]);
        let result = malformed.tool_result().to_string();
        assert!(result.contains("not valid JSON"), "{result}");
        assert!(result.contains("arguments_follow_the_schema"), "{result}");
        let range = Invalid::OutOfRange(vec!["arguments.days_ago is 100000".into()]);
        assert!(range.tool_result().to_string().contains("days_ago"));
    }
}
