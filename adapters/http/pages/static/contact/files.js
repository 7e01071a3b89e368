// The contact form's documents, checked in the browser before anything is sent: too
// many files, a file too large, of a type the office does not take, or all together too
// large. The server checks the same again (by the files' bytes); this only saves a
// person from waiting for an upload that will be refused. The limits and the messages
// (in the page's language) come from the file input's data attributes.
//
// Once the form is on its way, its send button is disabled: a second click would send it
// again (the server answers that one with the same receipt, but only after the upload).
// Without scripts the button stays as it is, and the server's answer is the same.
(function () {
  "use strict";
  var input = document.getElementById("files");
  var output = document.getElementById("files-check");
  var form = document.getElementById("contact-form");
  if (!input || !output || !form) {
    return;
  }
  var accepted = {"application/pdf": true, "image/jpeg": true, "image/png": true};
  var extensions = /\.(pdf|jpe?g|png)$/i;

  function say(template, name) {
    return template.replace("{name}", name);
  }

  function problems() {
    var found = [];
    var files = input.files || [];
    var total = 0;
    if (files.length > Number(input.dataset.maxFiles)) {
      found.push(input.dataset.tooMany);
    }
    for (var i = 0; i < files.length; i += 1) {
      var file = files[i];
      total += file.size;
      if (file.size === 0) {
        found.push(say(input.dataset.empty, file.name));
      } else if (file.size > Number(input.dataset.maxFileBytes)) {
        found.push(say(input.dataset.tooLarge, file.name));
      }
      if (!(accepted[file.type] || (!file.type && extensions.test(file.name)))) {
        found.push(say(input.dataset.wrongType, file.name));
      }
    }
    if (total > Number(input.dataset.maxTotalBytes)) {
      found.push(input.dataset.totalTooLarge);
    }
    return found;
  }

  function show(found) {
    output.textContent = "";
    if (found.length === 0) {
      input.removeAttribute("aria-invalid");
      return;
    }
    var heading = document.createElement("p");
    heading.textContent = input.dataset.summary;
    var list = document.createElement("ul");
    found.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
    output.appendChild(heading);
    output.appendChild(list);
    input.setAttribute("aria-invalid", "true");
  }

  input.addEventListener("change", function () {
    show(problems());
  });
  function sendButtons(disabled) {
    var buttons = form.querySelectorAll("button[type=submit], input[type=submit]");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].disabled = disabled;
    }
  }

  form.addEventListener("submit", function (event) {
    var found = problems();
    show(found);
    if (found.length > 0) {
      event.preventDefault();
      input.focus();
      return;
    }
    if (!event.defaultPrevented) {
      // After the form data is taken (a disabled button would not be sent: these have
      // no name, so nothing is lost either way).
      window.setTimeout(function () {
        sendButtons(true);
      }, 0);
    }
  });
  // Back to the page from the browser's history (its cache keeps the disabled button),
  // e.g. to send a changed message: the button works again.
  window.addEventListener("pageshow", function () {
    sendButtons(false);
  });
})();
