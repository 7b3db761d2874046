// /api/docs/: Swagger UI on the API's own schema (a static file: the CSP forbids inline scripts).
(function () {
  "use strict";
  const node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The session cookie authenticates; Swagger UI sends the CSRF token with "Try it out".
    requestInterceptor: (request) => {
      const token = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
      if (token) request.headers["X-CSRFToken"] = token.split("=")[1];
      return request;
    },
  });
})();
