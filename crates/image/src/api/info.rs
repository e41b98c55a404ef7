//! `/v2/info/import`: the discovery call clients make before an interoperable
//! import. This store takes image data only through `PUT /file`, so it lists no
//! import methods, as Glance does with `enabled_import_methods = []`.

use axum::Json;
use serde_json::{json, Value};

pub async fn import_methods() -> Json<Value> {
    Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": [],
        }
    }))
}
