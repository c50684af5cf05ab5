// Types of the validator scripts/gen-schema-validator.mjs generates (Ajv standalone code).
import type { GeneratedValidator } from "../spec/schema-validator.generated.js";

export declare const validate: GeneratedValidator;
export default validate;
