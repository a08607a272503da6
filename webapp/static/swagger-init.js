// Swagger UI from the locally served bundle; kept out of the page so the CSP needs no inline script.
(function () {
  var node = document.getElementById("swagger-ui-container");
  var config = { url: node.dataset.specUrl, dom_id: "#swagger-ui-container" };
  var extra = JSON.parse(node.dataset.config || "{}");
  for (var key in extra) { config[key] = extra[key]; }
  window.ui = SwaggerUIBundle(config);
})();
