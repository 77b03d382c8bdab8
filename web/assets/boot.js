// Starts the Yew app. A file of its own: the Content-Security-Policy
// allows no inline script.
import init from "./greenroom_web.js";
init({ module_or_path: "/assets/greenroom_web_bg.wasm" });
