// Image upload with a progress bar (kumo dashboard, images pages). A static file: the
// Content-Security-Policy allows no inline script. A form marked data-image-upload either
// creates the image first (Glance's create, through the dashboard) or already names its
// data URL (data-upload-url); the file then goes with XMLHttpRequest, whose
// upload.onprogress drives the <progress> element. The CSRF token travels as a header.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function parse(xhr) {
    try {
      return JSON.parse(xhr.responseText);
    } catch (e) {
      return { message: "HTTP " + xhr.status + " " + xhr.statusText };
    }
  }

  // An XMLHttpRequest follows redirects by itself: one that ended elsewhere than where it
  // was sent was sent to sign-in (the session expired), so the page goes there too.
  function leftForSignIn(xhr, sentTo) {
    if (!xhr.responseURL) {
      return false;
    }
    var ended = new URL(xhr.responseURL);
    if (ended.pathname === new URL(sentTo, window.location.href).pathname) {
      return false;
    }
    window.location.assign(ended.href);
    return true;
  }

  function setup(form) {
    var fileInput = form.querySelector('input[type="file"]');
    var box = form.querySelector("[data-upload-progress]");
    var bar = form.querySelector("progress");
    var percent = form.querySelector("[data-upload-percent]");
    var failed = form.querySelector("[data-upload-error]");
    var done = form.querySelector("[data-upload-done]");
    var button = form.querySelector('button[type="submit"]');

    function fail(message) {
      failed.textContent = message;
      failed.hidden = false;
      button.disabled = false;
    }

    function progress(value) {
      bar.value = value;
      bar.textContent = value + "%";
      percent.textContent = value + "%";
    }

    function send(uploadUrl, file) {
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", uploadUrl);
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("Accept", "application/json");
      box.hidden = false;
      progress(0);
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable && event.total > 0) {
          progress(Math.floor((event.loaded * 100) / event.total));
        }
      };
      xhr.upload.onload = function () {
        progress(100);
        percent.textContent = "100% sent; the image service is checking the data";
      };
      xhr.onload = function () {
        if (leftForSignIn(xhr, uploadUrl)) {
          return;
        }
        var answer = parse(xhr);
        if (xhr.status >= 200 && xhr.status < 300) {
          progress(100);
          done.textContent = "";
          done.append("Image " + answer.name + " is " + answer.status + ". ");
          var link = document.createElement("a");
          link.href = answer.url;
          link.textContent = "Open the image";
          done.append(link);
          done.hidden = false;
        } else {
          fail(answer.message || "The upload failed (HTTP " + xhr.status + ").");
        }
      };
      xhr.onerror = function () {
        fail("The upload was interrupted.");
      };
      xhr.send(file);
    }

    form.addEventListener("submit", function (event) {
      var file = fileInput && fileInput.files[0];
      var uploadUrl = form.getAttribute("data-upload-url");
      if (!file && !uploadUrl) {
        return; // no file: the plain form creates the image record only
      }
      event.preventDefault();
      failed.hidden = true;
      done.hidden = true;
      if (!file) {
        fail("Choose a file to upload.");
        return;
      }
      button.disabled = true;
      if (uploadUrl) {
        send(uploadUrl, file);
        return;
      }
      var fields = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (typeof value === "string") {
          fields.append(key, value);
        }
      });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.setRequestHeader("Content-Type", "application/x-www-form-urlencoded");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.onload = function () {
        if (leftForSignIn(xhr, form.getAttribute("action"))) {
          return;
        }
        var answer = parse(xhr);
        if (xhr.status === 201) {
          send(answer.upload_url, file);
        } else {
          fail(answer.message || "The image was not created (HTTP " + xhr.status + ").");
        }
      };
      xhr.onerror = function () {
        fail("The image could not be created: the request was interrupted.");
      };
      xhr.send(fields.toString());
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-image-upload]").forEach(setup);
  });
})();
