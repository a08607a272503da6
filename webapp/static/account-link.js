// The pages the emailed links open (verify email, reset or set a password). Loading the page sends
// nothing: mail scanners fetch links, and some run their scripts. Only the button POSTs the link's
// token (and the new password) as JSON to the API endpoint the form names, then shows the outcome.
(function () {
  var form = document.getElementById("account-form");
  var outcome = document.getElementById("outcome");
  var button = form.querySelector("button");
  var token = new URLSearchParams(window.location.search).get("token") || "";

  function show(text, failed) {
    outcome.textContent = text;
    outcome.className = failed ? "failed" : "done";
  }

  function describe(error) {
    var parts = [error && error.message ? error.message : "Something went wrong; try again."];
    var fields = (error && error.errors) || {};
    Object.keys(fields).forEach(function (field) {
      parts.push(field.replace(/_/g, " ") + ": " + [].concat(fields[field]).join(" "));
    });
    return parts.join(" ");
  }

  if (!token) {
    form.dataset.state = "no-token";
    show("This link has no token. Open the link from the email again, whole.", true);
    return;
  }
  form.dataset.state = "ready";
  button.disabled = false;

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { token: token };
    var password = form.elements.namedItem("new_password");
    if (password) {
      if (password.value !== form.elements.namedItem("confirm_password").value) {
        show("The two passwords differ.", true);
        return;
      }
      body.new_password = password.value;
    }
    button.disabled = true;
    form.dataset.state = "sending";
    fetch(form.dataset.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    }).then(function (response) {
      if (response.ok) {
        form.dataset.state = "done";
        form.hidden = true;
        show(form.dataset.done, false);
        return;
      }
      return response.json().catch(function () { return null; }).then(function (error) {
        form.dataset.state = "failed";
        button.disabled = false;
        show(describe(error), true);
      });
    }).catch(function () {
      form.dataset.state = "failed";
      button.disabled = false;
      show("The server could not be reached; try again.", true);
    });
  });
})();
