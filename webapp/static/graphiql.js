// GraphiQL against this server's /graphql; paste {"Authorization": "Bearer <token>"} in the Headers tab
// to authenticate. Subscriptions go to the realtime process's WebSocket (graphql-transport-ws, the
// graphql-ws client bundled in graphiql.min.js); the Headers are its connection_init payload.
(function () {
  var element = document.getElementById("graphiql");
  var fetcher = GraphiQL.createFetcher({
    url: window.location.pathname,
    subscriptionUrl: element.getAttribute("data-subscription-url") || undefined,
  });
  var root = ReactDOM.createRoot(element);
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolbarVisibility: true,
      defaultQuery: "# Sign in with the login mutation, then put the token in Headers.\n{\n  me {\n    id\n    name\n    email\n  }\n}\n",
    })
  );
})();
