pub mod gojson;
