//! The texts of the mails the product sends. Plain text: links work in every client.

pub struct Composed {
    pub subject: &'static str,
    pub body: String,
}

pub fn verification(public_url: &str, token: &str) -> Composed {
    Composed {
        subject: "Confirm your Blitz account",
        body: format!(
            "Welcome to Blitz.\n\n\
             Confirm your e-mail address by opening this link within 24 hours:\n\n\
             {public_url}/verify/{token}\n\n\
             If you did not create an account, ignore this message.\n"
        ),
    }
}

pub fn password_reset(public_url: &str, token: &str) -> Composed {
    Composed {
        subject: "Reset your Blitz password",
        body: format!(
            "Someone asked to reset the password of your Blitz account.\n\n\
             Choose a new password by opening this link within 1 hour:\n\n\
             {public_url}/reset/{token}\n\n\
             If it was not you, ignore this message; your password stays as it is.\n"
        ),
    }
}
