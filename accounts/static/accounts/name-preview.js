// Shows the name exactly as certificates will print it, while the learner types.
(function () {
  "use strict";
  function bind(preview) {
    var input = document.getElementById(preview.getAttribute("data-name-preview-for"));
    var value = preview.querySelector(".name-preview-value");
    if (!input || !value || preview.hasAttribute("data-bound")) {
      return;
    }
    preview.setAttribute("data-bound", "");
    var update = function () {
      var name = input.value.trim();
      value.textContent = name || "(your name)";
    };
    input.addEventListener("input", update);
    update();
  }
  function bindAll() {
    document.querySelectorAll("[data-name-preview-for]").forEach(bind);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bindAll);
  } else {
    bindAll();
  }
})();
