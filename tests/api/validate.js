// Validates an OpenAPI document (vaned's GET /v1/openapi.json) with
// @apidevtools/swagger-parser: the OpenAPI 3 schema, every $ref resolved.
// Prints the title and the number of paths; exit 1 with the reason if invalid.
const SwaggerParser = require("@apidevtools/swagger-parser");

SwaggerParser.validate(process.argv[2])
  .then((api) => {
    console.log(`valid: ${api.info.title} ${api.openapi}, ${Object.keys(api.paths).length} paths`);
  })
  .catch((err) => {
    console.error(`invalid: ${err.message}`);
    process.exit(1);
  });
