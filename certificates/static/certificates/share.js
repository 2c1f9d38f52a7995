// "Share" on the certificate moment: the device's share sheet where there is one
// (phones), else the verify link is copied; without JavaScript it is a plain link.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-share-url]");
    if (!link) {
      return;
    }
    var url = link.getAttribute("data-share-url");
    if (navigator.share) {
      event.preventDefault();
      navigator.share({ title: link.getAttribute("data-share-title") || document.title, url: url }).catch(function () {});
    } else if (navigator.clipboard && window.isSecureContext) {
      event.preventDefault();
      navigator.clipboard.writeText(url).then(function () {
        link.textContent = "Link copied";
      });
    }
  });
})();
