/**
 * A form generated from a task's argument schema (JSON Schema, as workers declare it from zod),
 * with react-jsonschema-form. Workers describe positional arguments as a 2020-12 tuple
 * (`prefixItems`); the form library speaks draft-07, where a tuple is `items: [...]`, so the schema
 * is translated first.
 */
import Form from "@rjsf/core";
import type { ErrorTransformer, RJSFSchema, UiSchema } from "@rjsf/utils";
import validator from "@rjsf/validator-ajv8";
import { forwardRef, useImperativeHandle, useMemo, useRef } from "react";

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** JSON Schema 2020-12 to draft-07, as far as argument schemas need it. */
export function toDraft07(schema: unknown, title?: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => toDraft07(s));
  if (!isObject(schema)) return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$schema") continue;
    if (key === "prefixItems" && Array.isArray(value)) {
      out.items = value.map((s, i) =>
        toDraft07(s, isObject(s) && !s.title ? `Argument ${i + 1}` : undefined),
      );
      out.additionalItems = "items" in schema ? toDraft07(schema.items) : false;
      continue;
    }
    if (key === "items" && "prefixItems" in schema) continue;
    if (key === "$defs") {
      out.definitions = toDraft07(value);
      continue;
    }
    if (key === "$ref" && typeof value === "string") {
      out.$ref = value.replace("#/$defs/", "#/definitions/");
      continue;
    }
    out[key] = isObject(value) || Array.isArray(value) ? toDraft07(value) : value;
  }
  if (title && !out.title) out.title = title;
  // An unticked box means false, not "missing".
  if (out.type === "boolean" && !("default" in out)) out.default = false;
  return out;
}

export interface SchemaFormHandle {
  /** Validates and shows the errors; true when the data is valid. */
  validate(): boolean;
}

const uiSchema: UiSchema = {
  "ui:submitButtonOptions": { norender: true },
  "ui:options": { orderable: false },
};

/**
 * In the form, a value of the wrong type can only be a field left empty: say so, once (an empty
 * choice also fails its enum).
 */
const transformErrors: ErrorTransformer = (errors) => {
  const empty = new Set(errors.filter((e) => e.name === "type").map((e) => e.property));
  return errors
    .filter((e) => !(e.name === "enum" && empty.has(e.property)))
    .map((e) => (e.name === "type" ? { ...e, message: "required" } : e));
};

export const SchemaForm = forwardRef<
  SchemaFormHandle,
  { schema: unknown; value: unknown; onChange: (value: unknown) => void }
>(function SchemaForm({ schema, value, onChange }, ref) {
  const form = useRef<Form>(null);
  const draft07 = useMemo(() => {
    return toDraft07(schema) as RJSFSchema;
  }, [schema]);
  useImperativeHandle(ref, () => ({ validate: () => form.current?.validateForm() ?? true }), []);
  return (
    <div className="rjsf">
      <Form
        ref={form}
        schema={draft07}
        uiSchema={uiSchema}
        validator={validator}
        formData={value}
        showErrorList={false}
        transformErrors={transformErrors}
        noHtml5Validate
        onChange={(e) => onChange(e.formData)}
      />
    </div>
  );
});
