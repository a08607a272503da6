// GraphiQL against this server's /graphql; paste "Bearer <token>" in the Headers tab to authenticate.
(function () {
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolbarVisibility: true,
      defaultQuery: "# Sign in with the login mutation, then put the token in Headers.\n{\n  me {\n    id\n    name\n    email\n  }\n}\n",
    })
  );
})();
