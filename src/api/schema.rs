//! Schema adjustments so the generated CRD installs on every supported Kubernetes version
//! (v1.20's apiserver rejects both of these, with a misleading message about identical
//! per-version schemas).

use schemars::Schema;

/// `Option<enum>` gives `enum: [..., null]`; `nullable: true` already admits null.
pub fn no_null_in_enum(schema: &mut Schema) {
    if let Some(values) = schema.get_mut("enum").and_then(|e| e.as_array_mut()) {
        values.retain(|v| !v.is_null());
    }
    // schemars may wrap the enum in a subschema.
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(list) = schema.get_mut(key).and_then(|l| l.as_array_mut()) {
            for item in list {
                if let Ok(sub) = <&mut Schema>::try_from(item) {
                    no_null_in_enum(sub);
                }
            }
        }
    }
}

/// A `default` on a status field means nothing (status is written by the controller only).
pub fn no_default(schema: &mut Schema) {
    schema.remove("default");
}
