// The four services' OpenAPI documents, each fetched through the gateway (/<service>/openapi.json), in one
// Swagger UI; "Try it out" calls the same origin. Paste a token with "Authorize" (it stays in this tab only).
window.ui = SwaggerUIBundle({
  urls: [
    { url: "/visits/openapi.json", name: "visits" },
    { url: "/committees/openapi.json", name: "committees" },
    { url: "/outreach/openapi.json", name: "outreach" },
    { url: "/reporting/openapi.json", name: "reporting" },
  ],
  "urls.primaryName": new URLSearchParams(location.search).get("service") || "visits",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  plugins: [SwaggerUIBundle.plugins.DownloadUrl],
  layout: "StandaloneLayout",
});
